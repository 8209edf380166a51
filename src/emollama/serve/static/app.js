// emollama web demo: plain JS over the same API as every other client (/v1/analyze, /v1/chat/completions).
// Server text is always inserted with textContent, never as HTML.
"use strict";

const COLOURS = { happiness: "#ffc800", sadness: "#3c78ff", surprise: "#00dcdc", anger: "#ff2828", fear: "#b43cff",
  disgust: "#3cc83c", neutral: "#a0a0a0", contempt: "#ff78c8" };
const $ = (id) => document.getElementById(id);
const state = { model: null, kind: null, media: null, history: [] };

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

function headers() {
  const key = $("api-key").value.trim();
  if (key) localStorage.setItem("emollama-key", key);
  return key ? { Authorization: "Bearer " + key } : {};
}

function status(text, isError) {
  $("status").textContent = text;
  $("status").className = isError ? "error" : "muted";
}

async function api(path, body) {
  const resp = await fetch(path, { method: "POST", headers: headers(), body });
  const data = await resp.json().catch(() => ({}));
  if (!resp.ok) throw new Error((data.error && data.error.message) || resp.status + " " + resp.statusText);
  return data;
}

async function init() {
  $("api-key").value = localStorage.getItem("emollama-key") || "";
  try {
    const health = await (await fetch("/health")).json();
    $("auth").hidden = !health.auth;
    const models = await (await fetch("/v1/models", { headers: headers() })).json();
    state.model = models.data ? models.data[0] : { id: health.model, kind: "analyzer" };
  } catch (err) {
    state.model = { id: "unknown", kind: "analyzer" };
  }
  $("model").textContent = state.model.id;
  const mllm = state.model.kind === "mllm";
  $("chat-note").textContent = mllm ? "Questions go to the loaded model with the same media."
    : "No language model loaded (start the server with --model PATH to ask questions).";
  if (navigator.mediaDevices && navigator.mediaDevices.getUserMedia) $("cam-start").hidden = false;
}

function drawImage(img) {
  const c = $("canvas");
  c.width = img.naturalWidth || img.videoWidth;
  c.height = img.naturalHeight || img.videoHeight;
  c.getContext("2d").drawImage(img, 0, 0, c.width, c.height);
}

function drawBoxes(records) {
  const ctx = $("canvas").getContext("2d");
  const lw = Math.max(2, Math.round(Math.min(ctx.canvas.width, ctx.canvas.height) / 200));
  ctx.font = `${Math.max(12, lw * 7)}px system-ui, sans-serif`;
  records.filter((r) => r.box).forEach((r, i) => {
    const [x0, y0, x1, y1] = r.box;
    const colour = COLOURS[r.label] || "#ffffff";
    ctx.lineWidth = lw; ctx.strokeStyle = colour; ctx.strokeRect(x0, y0, x1 - x0, y1 - y0);
    const text = `${r.track_id != null ? "#" + r.track_id : i + 1} ${r.label || "?"} ${(r.confidence || 0).toFixed(2)}`;
    const h = lw * 9, w = ctx.measureText(text).width + 8;
    const ty = Math.max(0, y0 - h);
    ctx.fillStyle = colour; ctx.fillRect(x0, ty, w, h);
    ctx.fillStyle = "#000"; ctx.fillText(text, x0 + 4, ty + h - lw * 2);
  });
}

function renderRecords(records) {
  const box = $("results");
  box.replaceChildren();
  const faces = records.filter((r) => r.kind === "face" || r.kind === "track");
  if (!faces.length) { box.appendChild(el("p", "muted", "No face found.")); return; }
  faces.forEach((r, i) => {
    const f = el("div", "face");
    const title = el("div", "label");
    const sw = el("span", "swatch"); sw.style.background = COLOURS[r.label] || "#fff";
    title.append(sw, `${r.track_id != null ? "Track " + r.track_id : "Face " + (i + 1)}: ${r.label || "unclear"}`);
    f.appendChild(title);
    const bars = el("div", "bars");
    Object.entries(r.probabilities || {}).sort((a, b) => b[1] - a[1]).forEach(([k, v]) => {
      const row = el("div", "bar");
      const track = el("div", "track"), fill = el("div", "fill");
      fill.style.width = (100 * (v || 0)).toFixed(1) + "%"; fill.style.background = COLOURS[k] || "";
      track.appendChild(fill);
      row.append(el("span", "", k), track, el("span", "", (100 * (v || 0)).toFixed(0) + "%"));
      bars.appendChild(row);
    });
    f.append(bars, el("p", "explanation", r.explanation || ""));
    const aus = el("div", "aus");
    Object.entries(r.au || {}).filter(([, v]) => v >= 0.2).sort((a, b) => b[1] - a[1])
      .forEach(([k, v]) => aus.appendChild(el("span", "au", `${k} ${v.toFixed(2)}`)));
    f.append(el("div", "meta", "AU cues (≥ 0.2):"), aus);
    const who = [r.age && r.age.group ? "age " + r.age.group : "", r.gender ? r.gender.value : ""].filter(Boolean);
    if (r.frame_range) who.push(`frames ${r.frame_range[0]}–${r.frame_range[1]}`);
    if (who.length) f.appendChild(el("div", "meta", who.join(" · ")));
    box.appendChild(f);
  });
}

async function analyze(blob, name) {
  state.kind = blob.type.startsWith("video/") ? "video" : "image";
  state.media = { blob, name };
  state.history = [];
  $("chat-log").replaceChildren();
  const url = URL.createObjectURL(blob);
  $("video").hidden = state.kind !== "video";
  if (state.kind === "image") {
    const img = new Image();
    await new Promise((ok, bad) => { img.onload = ok; img.onerror = () => bad(new Error("the browser cannot display this image")); img.src = url; })
      .then(() => drawImage(img)).catch((err) => status(err.message, true));
  } else {
    $("video").src = url;
  }
  status("Analyzing " + name + " …");
  const form = new FormData();
  form.append("file", blob, name);
  try {
    const t0 = performance.now();
    const data = await api("/v1/analyze", form);
    renderRecords(data.records);
    if (state.kind === "image") drawBoxes(data.records);
    else showVideoFrame(data.records);
    status(`Done in ${((performance.now() - t0) / 1000).toFixed(2)} s (${data.model}).`);
    const mllm = state.model && state.model.kind === "mllm";
    $("question").disabled = $("ask").disabled = !mllm;
  } catch (err) {
    $("results").replaceChildren(el("p", "error", err.message));
    status("Failed: " + err.message, true);
  }
}

function showVideoFrame(records) {
  const tracks = records.filter((r) => r.kind === "track");
  const v = $("video");
  if (!tracks.length) return;
  v.addEventListener("seeked", () => { drawImage(v); drawBoxes(tracks.filter((t) => t.frame === tracks[0].frame)); },
    { once: true });
  const seek = () => { v.currentTime = tracks[0].time_s || 0; };
  if (v.readyState >= 1) seek(); else v.addEventListener("loadedmetadata", seek, { once: true });
}

async function ask(ev) {
  ev.preventDefault();
  const q = $("question").value.trim();
  if (!q || !state.media) return;
  $("chat-log").appendChild(el("div", "msg user", q));
  $("question").value = "";
  const messages = [...state.history, { role: "user", content: q }];
  const body = new FormData();
  body.append("request", JSON.stringify({ model: state.model.id, messages }));
  body.append("file", state.media.blob, state.media.name);
  try {
    const data = await api("/v1/chat/completions", body);
    const answer = data.choices[0].message.content;
    state.history = [...messages, { role: "assistant", content: answer }];
    $("chat-log").appendChild(el("div", "msg", answer));
  } catch (err) {
    $("chat-log").appendChild(el("div", "msg error", err.message));
  }
}

async function startCam() {
  try {
    const stream = await navigator.mediaDevices.getUserMedia({ video: true });
    $("cam-video").srcObject = stream;
    $("cam").hidden = false;
  } catch (err) {
    status("Webcam unavailable: " + err.message, true);
  }
}

function snap() {
  const v = $("cam-video"), c = document.createElement("canvas");
  c.width = v.videoWidth; c.height = v.videoHeight;
  c.getContext("2d").drawImage(v, 0, 0);
  c.toBlob((blob) => blob && analyze(blob, "webcam.jpg"), "image/jpeg", 0.92);
}

$("file").addEventListener("change", (ev) => { const f = ev.target.files[0]; if (f) analyze(f, f.name); });
$("cam-start").addEventListener("click", startCam);
$("cam-snap").addEventListener("click", snap);
$("chat-form").addEventListener("submit", ask);
init();
