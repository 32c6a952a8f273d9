"""Tiny micro-expression releases in their real layouts (frame folders + coding sheets with the real quirks)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pandas as pd


def write_frames(folder: Path, numbers, pattern: str = "img{}.jpg", size: int = 48, shift: float = 0.0) -> Path:
    """Images named by frame number; a bright square that moves right by ``shift`` px per frame."""
    folder.mkdir(parents=True, exist_ok=True)
    for k, n in enumerate(numbers):
        img = np.full((size, size, 3), 60, np.uint8)
        x = int(10 + shift * k)
        cv2.rectangle(img, (x, 14), (x + 14, 30), (220, 200, 180), -1)
        cv2.imwrite(str(folder / pattern.format(n)), img)
    return folder


#: CASME II sheet rows with the quirks of the real one; the comment says what each exercises.
CASME2_ROWS = [
    # Subject, Filename, OnsetFrame, ApexFrame, OffsetFrame, Action Units, Estimated Emotion
    (1, "EP02_01f", 46, 50, 58, "R12", "Happiness "),        # side prefix, trailing space + case
    (1, "EP03_02 ", 10, "/", 20, "L1+2", "disgust"),         # filename space, missing apex, side prefix
    (2, "EP01_01", 5, 8, 0, "4+7 or 4+5", "repression"),     # offset 0, alternatives
    (2, "EP05_03", 1, 3, 6, "14", "fear"),                   # outside the 5 classes: excluded
    (3, "EP06_01", 30, 33, 36, "4+25", "Others"),            # AU25 outside the CASME II set
    (3, "EP07_01", 30, 34, 36, "17", "surprise"),
]
CASME2_FRAMES = {("sub01", "EP02_01f"): range(46, 59), ("sub01", "EP03_02"): range(10, 21),
                 ("sub02", "EP01_01"): range(5, 12), ("sub02", "EP05_03"): range(1, 7),
                 ("sub03", "EP06_01"): range(30, 37), ("sub03", "EP07_01"): range(30, 37)}
HEADER = ["Subject", "Filename", "OnsetFrame", "ApexFrame", "OffsetFrame", "Action Units", "Estimated Emotion"]


def write_casme2(root: Path, rows=CASME2_ROWS, suffix: str = ".xlsx") -> tuple[Path, Path]:
    frames = root / "CASME2_RAW_selected"
    for (subject, clip), numbers in CASME2_FRAMES.items():
        write_frames(frames / subject / clip, numbers, shift=1.0)
    sheet = root / f"CASME2-coding-20140508{suffix}"
    df = pd.DataFrame(rows, columns=HEADER)
    df.to_excel(sheet, index=False) if suffix == ".xlsx" else df.to_csv(sheet, index=False)
    return sheet, frames


SAMM_ROWS = [
    ("006", "006_1_2", 5562, 5588, 5604, "4+7", "Anger"),
    (6, "006_1_5", 1000, 1004, 1010, "R12B", "happiness"),   # integer subject, intensity letter
    ("007", "007_3_1", 200, "-", 220, "2", "Other"),
]


def write_samm(root: Path) -> tuple[Path, Path]:
    frames = root / "SAMM"
    write_frames(frames / "006" / "006_1_2", range(5562, 5606, 2), "006_{:05d}.jpg")  # every other number
    write_frames(frames / "006" / "006_1_5", range(1000, 1011), "006_{:05d}.jpg")
    write_frames(frames / "007" / "007_3_1", range(200, 221), "007_{:05d}.jpg")
    sheet = root / "SAMM_Micro_FACS_Codes_v2.xlsx"
    title = [["SAMM Micro-Movement FACS Codes", "", "", "", "", "", ""], [""] * 7]
    df = pd.DataFrame(title + [HEADER[:2] + ["Onset Frame", "Apex Frame", "Offset Frame", "Action Units",
                                             "Estimated Emotion"]] + [list(r) for r in SAMM_ROWS])
    df.to_excel(sheet, index=False, header=False)
    return sheet, frames


def write_smic(root: Path) -> Path:
    tree = root / "SMIC_all_raw" / "HS"
    write_frames(tree / "s1" / "micro" / "negative" / "s1_ne_01", range(586460, 586472), "image{}.bmp")
    write_frames(tree / "s1" / "micro" / "positive" / "s1_po_01", range(10, 19), "image{}.bmp")
    write_frames(tree / "s2" / "micro" / "surprise" / "s2_sur_01", range(5, 15), "image{}.bmp")
    write_frames(tree / "s2" / "non_micro" / "negative" / "s2_ne_09", range(5, 9), "image{}.bmp")  # not a ME
    return tree


#: CAS(ME)^3 Part A label sheet rows (sheet ``label``; frame numbers are JPG indices) with quirks seen in such
#: sheets: case and spaces in the emotion, an AU string with sides, an apex outside onset..offset.
CASME3_ROWS = [
    # Subject, Filename, Onset, Apex, Offset, AU, Objective class, emotion
    ("spNO.1", "a", 116, 120, 126, "L12", "1", "happy"),
    ("spNO.1", "b", 40, 43, 47, "4+7", "2", "Disgust "),
    ("spNO.2", "a", 7, 9, 12, "1+2", "6", "surprise"),
    ("spNO.2", "c", 300, 304, 309, "4", "7", "others"),
    ("spNO.3", "d", 20, 22, 25, "15+17", "3", "sad"),
]
CASME3_HEADER = ["Subject", "Filename", "Onset", "Apex", "Offset", "AU", "Objective class", "emotion"]


def write_casme3(root: Path, rows=CASME3_ROWS, full: tuple = ()) -> tuple[Path, Path]:
    """The ME clip release (``frame/spNO.1_a_116/116.jpg``); rows whose (subject, filename) is in ``full`` get
    the full release's sequence folder instead (``spNO.2/c/color/<n>.jpg`` with depth/ beside it)."""
    frames = root / "Part_A_ME_clip" / "frame"
    for subject, filename, onset, _apex, offset, *_ in rows:
        if (subject, filename) in full:
            seq = frames / subject / filename
            write_frames(seq / "color", range(onset - 5, offset + 6), "{}.jpg", shift=1.0)
            write_frames(seq / "depth", range(onset - 5, offset + 6), "{}.png")
        else:
            write_frames(frames / f"{subject}_{filename}_{onset}", range(onset, offset + 1), "{}.jpg", shift=1.0)
    sheet = root / "cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx"
    pd.DataFrame(rows, columns=CASME3_HEADER).to_excel(sheet, index=False, sheet_name="label")
    return sheet, frames
