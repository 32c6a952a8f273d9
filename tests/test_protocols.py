import itertools

import pytest

from unmask.errors import UnmaskError
from unmask.train.protocols import make_folds

SUBJECTS = [f"s{i:02d}" for i in range(1, 12)]


@pytest.mark.parametrize("name, kw", [("loso", {}), ("loso", {"val_subjects": 2}), ("kfold", {"k": 4}),
                                      ("kfold", {"k": 3, "val_subjects": 2})])
@pytest.mark.parametrize("seed", [0, 1, 7])
def test_no_subject_in_two_of_train_val_test_in_any_fold(name, kw, seed):
    folds = make_folds(SUBJECTS, name=name, seed=seed, **kw)
    for f in folds:
        parts = [set(f.train), set(f.val), set(f.test)]
        for a, b in itertools.combinations(parts, 2):
            assert not a & b, f"leak in fold {f.name}"
        assert set().union(*parts) == set(SUBJECTS)  # every subject is used
        assert len(f.val) == kw.get("val_subjects", 1)
    tests = [s for f in folds for s in f.test]
    assert sorted(tests) == SUBJECTS  # each subject is tested exactly once


def test_loso_has_one_fold_per_subject_and_seeded_validation():
    a = make_folds(SUBJECTS, seed=0)
    assert [f.name for f in a] == SUBJECTS and all(f.test == (f.name,) for f in a)
    assert a == make_folds(SUBJECTS, seed=0)
    assert [f.val for f in a] != [f.val for f in make_folds(SUBJECTS, seed=1)]


def test_subset_of_folds_draws_the_same_validation_subjects():
    full = {f.name: f for f in make_folds(SUBJECTS, seed=3)}
    part = make_folds(SUBJECTS, seed=3, only=["s03", "s07"])
    assert [f.name for f in part] == ["s03", "s07"]
    assert all(full[f.name] == f for f in part)
    with pytest.raises(UnmaskError, match="unknown fold"):
        make_folds(SUBJECTS, only=["s99"])


def test_test_subject_validation_is_explicit_and_marked_optimistic():
    folds = make_folds(SUBJECTS, validation="test_subject")
    assert all(f.optimistic and f.val == f.test for f in folds)
    assert not any(f.optimistic for f in make_folds(SUBJECTS))


def test_split_file(tmp_path):
    p = tmp_path / "split.csv"
    p.write_text("subject,split\ns01,train\ns02,train\ns03,val\ns04,test\n")
    (fold,) = make_folds(SUBJECTS[:4], name="split", split_file=p)
    assert fold.train == ("s01", "s02") and fold.val == ("s03",) and fold.test == ("s04",)
    p.write_text("subject,split\ns01,train\ns02,holdout\n")
    with pytest.raises(UnmaskError, match=r"split.csv:3: column 'split'"):
        make_folds(SUBJECTS[:4], name="split", split_file=p)


def test_too_few_subjects_for_validation_is_a_clear_error():
    with pytest.raises(UnmaskError, match="cannot hold out 2 validation subject"):
        make_folds(["a", "b", "c"], val_subjects=2)
