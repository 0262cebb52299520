// tensorpanda editor: the page's side. The server (app/editor.py) renders every image; this
// script keeps the controls, asks for one image at a time and shows it.
"use strict";

const $ = (id) => document.getElementById(id);
const state = {
  info: null, seed: 0, method: "panda", part: 0, appearance: 0, sign: 1, direction: 0,
  strength: 0,
};
let busy = false;     // a request for the edited image is in flight
let pending = false;  // the controls moved meanwhile: ask again when it is back

async function getJSON(url) {
  const response = await fetch(url);
  const body = await response.json();
  if (!response.ok) {
    const error = new Error(body.error || response.statusText);
    error.status = response.status;
    throw error;
  }
  return body;
}

function showError(error) {
  $("status").textContent = error.message;
  $("status").className = "error";
}

function showStatus(text) {
  $("status").textContent = text;
  $("status").className = "";
}

// The query of an edit at `strength`: only the parameters the method takes.
function editQuery(strength) {
  const query = new URLSearchParams({ seed: state.seed, method: state.method, strength });
  if (state.method === "panda") {
    query.set("part", state.part);
    query.set("appearance", state.appearance);
    query.set("sign", state.sign);
  } else {
    query.set("direction", state.direction);
  }
  return query.toString();
}

// Ask for the edited image; while one request is in flight, later moves are merged into one.
async function update() {
  if (busy) { pending = true; return; }
  busy = true;
  document.body.dataset.busy = "1";
  try {
    do {
      pending = false;
      const query = editQuery(state.strength);
      const start = performance.now();
      const body = await getJSON("/api/edit?" + query);
      const edited = $("edited");
      edited.src = body.image;
      edited.dataset.query = query;
      edited.dataset.label = body.label;
      showStatus(`updated in ${Math.round(performance.now() - start)} ms ` +
                 `(the generator: ${Math.round(body.seconds * 1000)} ms)`);
    } while (pending);
  } catch (error) {
    showError(error);
  } finally {
    busy = false;
    delete document.body.dataset.busy;
  }
}

async function loadOriginal() {
  const body = await getJSON("/api/edit?" + editQuery(0));
  $("original").src = body.image;
}

function drawPart() {
  const info = state.info;
  const [H, W] = info.grid;
  const canvas = $("overlay");
  canvas.width = W;
  canvas.height = H;
  const context = canvas.getContext("2d");
  const pixels = context.createImageData(W, H);
  const map = info.part_maps[state.part];
  for (let r = 0; r < H; r++) {
    for (let c = 0; c < W; c++) {
      const i = 4 * (r * W + c);
      pixels.data.set([255, 190, 0, Math.round(120 * map[r][c])], i);
    }
  }
  context.putImageData(pixels, 0, 0);
  const shown = $("show-part").checked && state.method === "panda";
  canvas.classList.toggle("hidden", !shown);
  $("caption-original").textContent = shown ? `original, part ${state.part} highlighted` :
    "original";
}

function listAppearances() {
  const list = $("appearances");
  list.replaceChildren();
  const ranked = state.info.ranking[state.part];
  if (ranked.length === 0) {
    const item = document.createElement("li");
    item.textContent = "this part has no region (a flat map): pick another";
    list.append(item);
    return;
  }
  for (const entry of ranked) {
    const button = document.createElement("button");
    button.type = "button";
    button.dataset.appearance = entry.appearance;
    button.dataset.sign = entry.sign;
    button.textContent = `${entry.sign < 0 ? "−" : "+"}a_${entry.appearance}`;
    const score = document.createElement("span");
    score.className = "score";
    score.textContent = entry.score.toFixed(2);
    button.append(score);
    const selected = entry.appearance === state.appearance && entry.sign === state.sign;
    button.classList.toggle("selected", selected);
    button.setAttribute("aria-pressed", String(selected));
    button.addEventListener("click", () => pickAppearance(entry.appearance, entry.sign));
    const item = document.createElement("li");
    item.append(button);
    list.append(item);
  }
}

function pickAppearance(appearance, sign) {
  state.appearance = appearance;
  state.sign = sign;
  listAppearances();
  caption();
  update();
}

// Select a part: its best-ranked appearance comes with it.
function pickPart(part) {
  state.part = part;
  $("part").value = String(part);
  const best = state.info.ranking[part][0];
  state.appearance = best ? best.appearance : 0;
  state.sign = best ? best.sign : 1;
  drawPart();
  listAppearances();
  caption();
}

function caption() {
  let text;
  if (state.method === "panda") {
    text = `PandA: ${state.sign < 0 ? "−" : ""}a_${state.appearance} into part ${state.part}`;
  } else {
    text = `${state.info.methods[state.method].label}: u_${state.direction}`;
  }
  $("caption").textContent = `${text}, α = ${state.strength}`;
}

function setMethod(method) {
  state.method = method;
  const spec = state.info.methods[method];
  const slider = $("strength");
  slider.min = spec.min;
  slider.max = spec.max;
  slider.step = method === "panda" ? 0.05 : 0.1;
  state.strength = Math.min(Math.max(state.strength, spec.min), spec.max);
  slider.value = state.strength;
  $("strength-value").textContent = `α = ${state.strength}`;
  $("unit").textContent = `α in units of ${spec.unit}`;
  $("panda-controls").hidden = method !== "panda";
  $("latent-controls").hidden = method === "panda";
  if (method !== "panda") {
    const select = $("direction");
    select.replaceChildren(...spec.directions.map((score, i) => {
      const option = document.createElement("option");
      option.value = i;
      option.textContent = `u_${i} (score ${score.toPrecision(3)})`;
      return option;
    }));
    state.direction = Math.min(state.direction, spec.directions.length - 1);
    select.value = String(state.direction);
  }
  for (const radio of document.querySelectorAll("input[name=method]")) {
    radio.checked = radio.value === method;
  }
  drawPart();
  caption();
}

async function pickSeed(seed) {
  state.seed = seed;
  $("seed").value = String(seed);
  try {
    await loadOriginal();
    await update();
  } catch (error) {
    showError(error);
  }
}

function download(href, name) {
  const link = document.createElement("a");
  link.href = href;
  link.download = name;
  document.body.append(link);
  link.click();
  link.remove();
}

async function saveGif() {
  showStatus("rendering the sweep…");
  try {
    const response = await fetch("/api/sweep.gif?" + editQuery(state.strength));
    if (!response.ok) throw new Error((await response.json()).error);
    const url = URL.createObjectURL(await response.blob());
    download(url, `${$("edited").dataset.label || "sweep"}.gif`);
    setTimeout(() => URL.revokeObjectURL(url), 10000);
    showStatus("GIF saved");
  } catch (error) {
    showError(error);
  }
}

// A click on either image picks the part whose map is largest under the cursor.
async function clickPart(event) {
  const box = event.currentTarget.getBoundingClientRect();
  const x = Math.min(Math.max((event.clientX - box.left) / box.width, 0), 1);
  const y = Math.min(Math.max((event.clientY - box.top) / box.height, 0), 1);
  try {
    const body = await getJSON(`/api/part?x=${x.toFixed(4)}&y=${y.toFixed(4)}`);
    if (state.method !== "panda") setMethod("panda");
    pickPart(body.part);
    update();
  } catch (error) {
    showError(error);
  }
}

function wire() {
  $("frame").addEventListener("click", clickPart);
  $("frame-original").addEventListener("click", clickPart);
  $("part").addEventListener("change", () => { pickPart(Number($("part").value)); update(); });
  $("show-part").addEventListener("change", drawPart);
  $("direction").addEventListener("change", () => {
    state.direction = Number($("direction").value);
    caption();
    update();
  });
  for (const radio of document.querySelectorAll("input[name=method]")) {
    radio.addEventListener("change", () => { setMethod(radio.value); update(); });
  }
  $("strength").addEventListener("input", () => {
    state.strength = Number($("strength").value);
    $("strength-value").textContent = `α = ${state.strength}`;
    caption();
    update();
  });
  $("zero").addEventListener("click", () => {
    $("strength").value = 0;
    $("strength").dispatchEvent(new Event("input"));
  });
  $("seed").addEventListener("change", () => pickSeed($("seed").value));
  $("random").addEventListener("click", () => pickSeed(Math.floor(Math.random() * 2 ** 31)));
  $("save-image").addEventListener("click", () => {
    download($("edited").src, `${$("edited").dataset.label || "edit"}.png`);
  });
  $("save-gif").addEventListener("click", saveGif);
}

async function start() {
  try {
    let info;
    for (;;) {  // 503 while the server is still setting up: wait for it
      try {
        info = await getJSON("/api/info");
        break;
      } catch (error) {
        if (error.status !== 503) throw error;
        showStatus(error.message);
        await new Promise((resolve) => setTimeout(resolve, 1000));
      }
    }
    state.info = info;
    const [H, W] = info.grid;
    $("subtitle").textContent = `${info.name ? info.name + " · " : ""}${info.adapter}, ` +
      `layer ${info.layer} (${H}×${W} grid): ${info.parts} parts, ${info.appearances} ` +
      "appearances";
    $("part").replaceChildren(...info.part_maps.map((_, k) => {
      const option = document.createElement("option");
      option.value = k;
      option.textContent = `part ${k}`;
      return option;
    }));
    wire();
    pickPart(0);
    setMethod("panda");
    await pickSeed(info.seed);
    document.body.dataset.ready = "1";
  } catch (error) {
    showError(error);
  }
}

start();
