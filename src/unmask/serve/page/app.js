// The page of `unmask serve`: upload -> poll the job -> draw the result. Plain DOM, stable ids
// (the browser test reads them); the state of the page is in <body data-state="idle|busy|done|error">,
// and <body data-runs> counts the uploads that ended (done or error), so a test can wait for the next one.
"use strict";

const $ = (id) => document.getElementById(id);
let info = null;

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k.startsWith("data-")) node.setAttribute(k, v);
    else node[k] = v;
  }
  for (const c of children) node.append(c);  // strings become text nodes: names are never parsed as HTML
  return node;
}

function setState(state) {
  if (state === "done" || state === "error") document.body.dataset.runs = Number(document.body.dataset.runs) + 1;
  document.body.dataset.state = state;
  const busy = state === "busy";
  for (const b of document.querySelectorAll("#input button, #input input")) b.disabled = busy;
}

function showMessage(text) {
  $("message").textContent = text;
  $("message").hidden = false;
  $("status").hidden = true;
  setState("error");
}

async function init() {
  try {
    const r = await fetch("/api/info");
    info = await r.json();
  } catch (e) {
    showMessage("the server did not answer: " + e);
    return;
  }
  const tasks = info.tasks.map((t) => `${t.title} (${t.name})`).join(", ");
  $("model").textContent = `model: ${info.model}; tasks: ${tasks}; ${info.detector}`;
  showTrust(info);
  $("limits").textContent = `Up to ${info.limits.max_upload_mb} MB; videos up to ${info.limits.max_video_s} s ` +
    `(more than ${info.limits.max_frames} frames are sampled). Uploads are deleted after the analysis.`;
  $("file").accept = info.accept.join(",");
  for (const name of info.examples) {
    $("examples").append(el("button", {type: "button", class: "example", "data-name": name,
                                       onclick: () => start(fetch(`/api/examples/${encodeURIComponent(name)}`,
                                                                  {method: "POST"}), name)}, name));
  }
  if (navigator.mediaDevices && navigator.mediaDevices.getUserMedia) $("webcam-start").hidden = false;
  setState("idle");
}

function upload(blob, name) {
  if (blob.size > info.limits.max_upload_bytes) {
    showMessage(`${name} is larger than ${info.limits.max_upload_mb} MB, the largest upload this server takes`);
    return;
  }
  start(fetch(`/api/upload?name=${encodeURIComponent(name)}`, {method: "POST", body: blob}), name);
}

// `request`: the fetch that created the job; then poll it until it is done or failed.
async function start(request, name) {
  setState("busy");
  $("message").hidden = true;
  $("result").hidden = true;
  $("status").hidden = false;
  $("progress").value = 0;
  $("stage").textContent = `sending ${name}`;
  try {
    const r = await request;
    const body = await r.json();
    if (!r.ok) return showMessage(body.error || `the server answered ${r.status}`);
    for (;;) {
      const s = await (await fetch(`/api/jobs/${body.id}`)).json();
      if (s.error) return showMessage(s.error);
      $("progress").value = s.progress;
      $("stage").textContent = `${s.name}: ${s.stage}`;
      if (s.state === "done") return render(s.result);
      await new Promise((ok) => setTimeout(ok, 250));
    }
  } catch (e) {
    showMessage(`the upload of ${name} failed: ${e}`);
  }
}

// What the model (and each peer) was trained on, how its probabilities are made, the synthetic-training warning.
function showTrust(info) {
  const t = info.trust;
  const lines = [el("div", {id: "trained-on"}, `ours (${info.model}): ${t.trained_on}`)];
  if (t.warning) lines.push(el("div", {id: "trust-warning", class: "warning"}, `Warning: this model was ${t.warning}.`));
  lines.push(el("div", {id: "calibration"}, t.calibration), el("div", {id: "ood"}, t.ood));
  for (const p of info.peers) lines.push(el("div", {class: "peer-info", "data-peer": p.name}, `peer ${p.name}: ${p.trained_on}`));
  $("trust").replaceChildren(...lines);
}

// The unlike-training flag of a face, shown beside its bars.
function flag(f) {
  const cell = el("div", {class: "flag", "data-unlike": String(f.unlike_training),
                          "data-score": f.ood_score === null ? "" : String(f.ood_score)});
  if (f.unlike_training) cell.append(el("b", {class: "warning"}, "this face is unlike the faces the model was trained on"));
  if (f.ood_score !== null) cell.append(el("div", {class: "score"}, `unlike-training score ${f.ood_score.toFixed(2)}`));
  return cell;
}

function bars(task, scores) {
  const cell = el("td", {class: "task", "data-task": task.name});
  const pred = scores.pred || "-";
  const conf = scores.conf === null ? "" : ` ${scores.conf.toFixed(3)}`;
  cell.append(el("div", {class: "pred"}, el("b", {}, pred), conf));
  for (const label of task.labels) {
    const p = scores.p[label];
    const row = el("div", {class: "bar-row", "data-label": label, "data-p": String(p)},
                   el("span", {class: "label"}, label),
                   el("span", {class: "bar"}, el("span", {class: "fill"})),
                   el("span", {class: "value"}, p.toFixed(3)));
    row.querySelector(".fill").style.width = `${(100 * p).toFixed(1)}%`;
    if (label === scores.pred || (task.kind === "multi" && p >= 0.5)) row.classList.add("top");
    cell.append(row);
  }
  return cell;
}

function render(result) {
  $("status").hidden = true;
  $("result-title").textContent = `${result.name}: ${result.faces.length} face(s)`;
  $("notes").replaceChildren(...result.notes.map((n) => el("li", {}, n)));
  const video = result.kind === "video";
  const annotated = result.media[video ? "annotated.mp4" : "annotated.jpg"];  // absent: a video broken part-way
  $("annotated-image").hidden = video || !annotated;
  $("annotated-video").hidden = !video || !annotated;
  if (annotated) $(video ? "annotated-video" : "annotated-image").src = annotated;
  $("table-caption").textContent = video
    ? "One row per face track, at the frame where the displayed expression peaks (apex search)."
    : "One row per face, largest detector score first.";
  $("faces-head").replaceChildren(el("th", {}, video ? "track" : "face"), el("th", {}, "where"),
                                  ...result.tasks.map((t) => el("th", {"data-task": t.name}, `${t.title} (${t.name})`)),
                                  ...info.peers.map((p) => el("th", {"data-peer": p.name}, `peer ${p.name}: shown`)));
  const rows = result.faces.map((f) => {
    const where = video ? `frame ${f.frame} (${f.time_s === null ? "?" : f.time_s.toFixed(2)} s), ` : "";
    return el("tr", {class: "face-row", "data-face": String(video ? f.track : f.face)},
              el("td", {}, String(video ? f.track : f.face)),
              el("td", {}, `${where}box ${f.box.join(" ")}`, flag(f)),
              ...result.tasks.map((t) => bars(t, f.tasks[t.name])),
              ...info.peers.map((p) => f.peers[p.name]
                ? bars({name: p.name, labels: p.labels, kind: "single"}, f.peers[p.name])
                : el("td", {class: "task", "data-peer": p.name}, "-")));
  });
  $("faces-body").replaceChildren(...rows);
  $("timeline-figure").hidden = !video;
  if (video) $("timeline").src = result.media["timeline.png"];
  $("result").hidden = false;
  setState("done");
}

// -- inputs ---------------------------------------------------------------------------------------
$("file").addEventListener("change", () => {
  const f = $("file").files[0];
  if (f) upload(f, f.name);
  $("file").value = "";  // the same file chosen again is a new upload
});
$("drop").addEventListener("dragover", (e) => { e.preventDefault(); $("drop").classList.add("over"); });
$("drop").addEventListener("dragleave", () => $("drop").classList.remove("over"));
$("drop").addEventListener("drop", (e) => {
  e.preventDefault();
  $("drop").classList.remove("over");
  const f = e.dataTransfer.files[0];
  if (f && document.body.dataset.state !== "busy") upload(f, f.name);
});

let stream = null;
$("webcam-start").addEventListener("click", async () => {
  try {
    stream = await navigator.mediaDevices.getUserMedia({video: true});
  } catch (e) {
    return showMessage(`the webcam is not available: ${e.message || e}`);
  }
  $("webcam-video").srcObject = stream;
  $("webcam").hidden = false;
});
$("webcam-capture").addEventListener("click", () => {
  const v = $("webcam-video");
  if (!v.videoWidth) return showMessage("the webcam has not sent a picture yet");
  const canvas = el("canvas", {width: v.videoWidth, height: v.videoHeight});
  canvas.getContext("2d").drawImage(v, 0, 0);
  canvas.toBlob((blob) => upload(blob, "webcam.jpg"), "image/jpeg", 0.92);
});
$("webcam-stop").addEventListener("click", () => {
  if (stream) stream.getTracks().forEach((t) => t.stop());
  stream = null;
  $("webcam").hidden = true;
});

init();
