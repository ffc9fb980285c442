// emo3d browser viewer: shows the rig the server names in /config.json and drives its morph targets with
// the frames that arrive over the WebSocket (control protocol, docs/control-protocol.md).
// window.__emo3d holds the page's live numbers (frames received, frame-to-photon delays) for tests and the HUD.
import * as THREE from "three";
import { OrbitControls } from "three/examples/jsm/controls/OrbitControls.js";
import { GLTFLoader } from "three/examples/jsm/loaders/GLTFLoader.js";
import { VRMLoaderPlugin, VRMUtils } from "@pixiv/three-vrm";

const TOP_K = 8;
const BAR_EVERY_MS = 100;          // DOM bars refresh period (the face itself updates every animation frame)
const RECONNECT_MIN_MS = 250;
const RECONNECT_MAX_MS = 2000;
const DELAY_WINDOW = 600;          // frame-to-photon samples kept

const $ = (id) => document.getElementById(id);
const stats = (window.__emo3d = {
  ready: false, rig: null, connected: false, connects: 0, framesReceived: 0, lastIndex: -1, indexGaps: 0,
  errors: [], acks: [], animationFrames: 0,
  // frame-to-photon: for every frame applied, the delay from its arrival to the end of the draw that shows it,
  // in ms and in animation frames (1 = drawn in the first animation frame after it arrived)
  applied: 0, superseded: 0, delayMs: [], delayFrames: [], maxDelayFrames: 0,
  recording: null, clayMeshes: 0,
  // eyes: how the frame's eye rotations reach the rig ("shapes": its eyeLook* targets already turn the eyes,
  // "bones": eye nodes found by name, "vrm-lookat": the VRM's lookAt, "none") and the gaze read back from the
  // scene after each draw: [yaw, pitch] per eye (left, right), radians, emo3d's convention (+pitch looks down)
  eyes: { mode: "none", gaze: null },
});

let config = null;
let names = [];
let socket = null;
let reconnectMs = RECONNECT_MIN_MS;
let nextId = 1;
let lastText = null;
let pending = null;                // newest frame not yet drawn
let latest = null;                 // newest frame drawn (for the bars)
let morphBindings = [];            // {influences, slot, src} : mesh morph slot <- weights[src]
let exprBindings = [];             // {name, src} : VRM expression <- weights[src]
let presetBindings = [];           // {name, src: [[index, w]...]} : VRM preset <- min(1, sum w * weights[index])
let vrm = null;
let pivot = null;
let eyeBones = [];                 // {node, rest, parentRel} per eye (left, right) in "bones" mode
let eyeGazeNodes = [];             // {node, restRel} per eye: the nodes whose rotation is read back

// --- three.js scene ------------------------------------------------------------------------------------------
const canvas = $("view");
const renderer = new THREE.WebGLRenderer({ canvas, antialias: true, preserveDrawingBuffer: true });
renderer.setPixelRatio(Math.min(window.devicePixelRatio || 1, 2));
const scene = new THREE.Scene();
scene.background = new THREE.Color(0x16181d);
const camera = new THREE.PerspectiveCamera(20, 1, 0.01, 100);
const controls = new OrbitControls(camera, canvas);
controls.enableDamping = true;
scene.add(new THREE.HemisphereLight(0xffffff, 0x3a3a44, 1.4));
const sun = new THREE.DirectionalLight(0xffffff, 2.2);
scene.add(sun);
let lastTick = performance.now();

function resize() {
  const r = canvas.parentElement.getBoundingClientRect();
  const w = Math.max(1, Math.floor(r.width)), h = Math.max(1, Math.floor(r.height));
  renderer.setSize(w, h, false);
  camera.aspect = w / h;
  camera.updateProjectionMatrix();
}
new ResizeObserver(resize).observe(canvas.parentElement);
resize();

function frameObject(root) {
  const box = new THREE.Box3().setFromObject(root);
  const size = box.getSize(new THREE.Vector3());
  const center = box.getCenter(new THREE.Vector3());
  const half = 0.5 * Math.max(size.y, size.x / Math.max(camera.aspect, 0.5)) * 1.15;
  const dist = half / Math.tan(THREE.MathUtils.degToRad(camera.fov / 2)) + size.z / 2;
  camera.position.set(center.x, center.y, center.z + dist);
  camera.near = dist / 100;
  camera.far = dist * 100;
  camera.updateProjectionMatrix();
  controls.target.copy(center);
  controls.update();
  sun.position.set(center.x + 0.3 * dist, center.y + 0.4 * dist, center.z + dist);
  return center;
}

// A primitive with no glTF material gets the spec's default: white, metallic 1, roughness 1, single-sided. A fully
// metallic surface has no diffuse term, so with no environment map it is lit only by the sun's specular and goes
// black wherever it faces away from the sun (the dark slivers along the left cheek and under the chin of the
// ICT-FaceKit head). Such a mesh is an untextured scan, not a metal bust: it gets a grey dielectric "clay"
// material, the look of emo3d's own renderer, still single-sided as the default material is (drawing the back
// faces too speckled the ICT lips and lids where inner surfaces touch the skin). A mesh without normals gets
// smooth vertex normals (GLTFLoader would shade it flat, faceting the face; emo3d's renderer also computes
// smooth normals); its material's own doubleSided is kept.
const CLAY = { color: 0xcfcfcf, metalness: 0.0, roughness: 0.65 };
function untexturedScan(mesh, parser) {
  const ref = parser.associations.get(mesh);
  const prim = ref && ref.meshes !== undefined ? parser.json.meshes[ref.meshes].primitives[ref.primitives || 0] : null;
  const noMaterial = prim !== null && prim.material === undefined;
  const noNormals = !mesh.geometry.getAttribute("normal");
  if (noNormals) mesh.geometry.computeVertexNormals();
  if (noMaterial) {
    mesh.material = new THREE.MeshStandardMaterial({ ...CLAY, side: THREE.FrontSide });
    stats.clayMeshes += 1;
  } else if (noNormals) {
    mesh.material = mesh.material.clone();
    mesh.material.flatShading = false;
  }
}

async function loadRig() {
  const loader = new GLTFLoader();
  loader.register((parser) => new VRMLoaderPlugin(parser));
  const gltf = await loader.loadAsync(config.rig.url);
  vrm = gltf.userData.vrm || null;
  const root = vrm ? vrm.scene : gltf.scene;
  if (vrm) VRMUtils.rotateVRM0(vrm);
  const targets = config.rig.targets;
  const index = Object.fromEntries(names.map((n, i) => [n, i]));
  const driven = new Set();
  if (vrm && vrm.expressionManager) {
    for (const e of vrm.expressionManager.expressions) {
      const ark = targets[e.expressionName];
      if (ark !== undefined) { exprBindings.push({ name: e.expressionName, src: index[ark] }); driven.add(ark); }
    }
  }
  if (vrm && vrm.expressionManager) {
    // a VRM without ARKit expressions: its presets from the scores, the retarget of emo3d.avatar.vrm
    for (const [name, recipe] of Object.entries(config.rig.presets || {})) {
      if (!vrm.expressionManager.getExpression(name)) continue;
      presetBindings.push({ name, src: recipe.map(([ark, w]) => [index[ark], w]) });
      recipe.forEach(([ark]) => driven.add(ark));
    }
  }
  root.traverse((o) => {
    if (o.isMesh) untexturedScan(o, gltf.parser);
    if (!o.morphTargetDictionary || !o.morphTargetInfluences) return;
    for (const [name, slot] of Object.entries(o.morphTargetDictionary)) {
      const ark = targets[name];
      if (ark !== undefined && !(exprBindings.length && driven.has(ark))) {
        morphBindings.push({ influences: o.morphTargetInfluences, slot, src: index[ark] });
        driven.add(ark);
      }
    }
  });
  const center = frameObject(root);
  pivot = new THREE.Group();
  pivot.position.copy(center);
  root.position.sub(center);
  pivot.add(root);
  scene.add(pivot);
  await bindEyes(gltf, driven);
  stats.rig = { name: config.rig.name, format: config.rig.format, shapes: driven.size, driven: [...driven].sort(),
    morphBindings: morphBindings.length, expressionBindings: exprBindings.length,
    presetBindings: presetBindings.length };
  if (vrm && vrm.expressionManager) stats.expression = (name) => vrm.expressionManager.getValue(name);   // for tests
}

// Eyes: the frame's eyes (emo3d/pose.py: per eye R = Ry(yaw) Rx(pitch) Rz(roll) in rig space, +yaw toward the
// subject's left, +pitch down) turn the rig's eye bones when its eyeLook* shapes do not already turn its eyes
// (both would double the turn). VRM: its lookAt, one gaze (the mean of both eyes) through the avatar's own
// range maps and applier (bones or lookUp/Down/Left/Right expressions); three-vrm's yaw/pitch have emo3d's
// signs (degrees). Plain glTF: the eye nodes the server found by name (config.rig.eyes).
const _q = new THREE.Quaternion(), _q2 = new THREE.Quaternion(), _e = new THREE.Euler(0, 0, 0, "YXZ");
const _v = new THREE.Vector3();

function relToPivot(node, out) {   // node's world rotation in the pivot's (rig) frame
  pivot.getWorldQuaternion(_q2).invert();
  return node.getWorldQuaternion(out).premultiply(_q2);
}

async function bindEyes(gltf, driven) {
  pivot.updateMatrixWorld(true);
  const shapes = [...driven].some((n) => n.startsWith("eyeLook"));
  let nodes = [];
  if (shapes) {
    stats.eyes.mode = "shapes";
  } else if (vrm && vrm.lookAt) {
    stats.eyes.mode = "vrm-lookat";
    nodes = ["leftEye", "rightEye"].map((b) => vrm.humanoid.getRawBoneNode(b)).filter((n) => n);
  } else if (config.rig.eyes) {
    nodes = await Promise.all([config.rig.eyes.left, config.rig.eyes.right]
      .map((i) => gltf.parser.getDependency("node", i)));
    eyeBones = nodes.map((node) => ({ node, rest: node.quaternion.clone(),
      parentRel: node.parent ? relToPivot(node.parent, new THREE.Quaternion()) : new THREE.Quaternion() }));
    stats.eyes.mode = "bones";
  }
  eyeGazeNodes = nodes.length === 2 ? nodes.map((node) => ({ node, restRel: relToPivot(node, new THREE.Quaternion()) })) : [];
}

function applyEyes(eyes) {
  if (stats.eyes.mode === "bones") {
    eyeBones.forEach((b, k) => {
      const [yaw, pitch, roll] = eyes.slice(3 * k, 3 * k + 3);
      // local = P^-1 R P rest, P = the parent's rest rotation in the rig frame: the eye turns by R in the rig frame
      _q.setFromEuler(_e.set(pitch, yaw, roll, "YXZ"));
      b.node.quaternion.copy(b.parentRel).invert().multiply(_q).multiply(b.parentRel).multiply(b.rest);
    });
  } else if (stats.eyes.mode === "vrm-lookat") {
    vrm.lookAt.yaw = THREE.MathUtils.RAD2DEG * 0.5 * (eyes[0] + eyes[3]);
    vrm.lookAt.pitch = THREE.MathUtils.RAD2DEG * 0.5 * (eyes[1] + eyes[4]);
  }
}

function readGaze() {   // after a draw: each eye's turn from rest, in the rig frame, as [yaw, pitch]
  if (!eyeGazeNodes.length) return;
  stats.eyes.gaze = eyeGazeNodes.map((g) => {
    const delta = relToPivot(g.node, _q).multiply(_q2.copy(g.restRel).invert());
    _v.set(0, 0, 1).applyQuaternion(delta);
    return [Math.atan2(_v.x, _v.z), Math.atan2(-_v.y, Math.hypot(_v.x, _v.z))];
  });
}

function apply(frame) {
  const w = frame.w;
  for (const b of morphBindings) b.influences[b.slot] = w[b.src];
  if (vrm) {
    for (const b of exprBindings) vrm.expressionManager.setValue(b.name, w[b.src]);
    for (const b of presetBindings) {
      let v = 0;
      for (const [i, k] of b.src) v += k * w[i];
      vrm.expressionManager.setValue(b.name, Math.min(1, v));
    }
  }
  if (pivot) {
    // emo3d/pose.py: R = Ry(yaw) Rx(pitch) Rz(roll) in rig space (three.js's axes), so Euler "YXZ" as is
    const [yaw, pitch, roll] = frame.head;
    pivot.rotation.set(pitch, yaw, roll, "YXZ");
  }
  applyEyes(frame.eyes);
}

function animate() {
  requestAnimationFrame(animate);
  stats.animationFrames += 1;
  const now = performance.now();
  const dt = (now - lastTick) / 1000;
  lastTick = now;
  const f = pending;
  pending = null;
  if (f) apply(f);
  if (vrm) vrm.update(dt);
  controls.update();
  renderer.render(scene, camera);
  if (f) readGaze();
  if (f) {
    const ms = performance.now() - f.arrival;
    const frames = stats.animationFrames - f.arrivalFrame;
    stats.applied += 1;
    stats.delayMs.push(ms);
    stats.delayFrames.push(frames);
    if (stats.delayMs.length > DELAY_WINDOW) { stats.delayMs.shift(); stats.delayFrames.shift(); }
    stats.maxDelayFrames = Math.max(stats.maxDelayFrames, frames);
    latest = f;
  }
  bars();
}

// --- side panel ---------------------------------------------------------------------------------------------
function makeBars(el, labels) {
  el.replaceChildren();
  return labels.map((label) => {
    const row = document.createElement("div");
    row.className = "bar";
    row.innerHTML = '<span class="name"></span><span class="track"><span class="fill"></span></span><span class="val"></span>';
    row.querySelector(".name").textContent = label;
    el.appendChild(row);
    return { row, name: row.querySelector(".name"), fill: row.querySelector(".fill"), val: row.querySelector(".val") };
  });
}
let shapeBars = [];
let emotionBars = [];
let lastBars = 0;

function setBar(b, label, v) {
  if (label !== null) b.name.textContent = label;
  b.fill.style.width = `${Math.round(Math.max(0, Math.min(1, v)) * 100)}%`;
  b.val.textContent = v.toFixed(2);
}

function bars() {
  const now = performance.now();
  if (!latest || now - lastBars < BAR_EVERY_MS) return;
  lastBars = now;
  const order = names.map((n, i) => i).filter((i) => names[i] !== "_neutral");
  order.sort((a, b) => latest.w[b] - latest.w[a]);
  order.slice(0, TOP_K).forEach((i, k) => setBar(shapeBars[k], names[i], latest.w[i]));
  const recent = stats.delayMs.slice(-60);
  const mean = recent.reduce((a, b) => a + b, 0) / Math.max(1, recent.length);
  $("hud").textContent = `${config.rig.name} · frame ${latest.index} · arrival→drawn ${mean.toFixed(1)} ms`;
}

function showEmotions(emotions) {
  config.emotions.forEach((e, k) => setBar(emotionBars[k], null, emotions ? (emotions[e] || 0) : 0));
}

function say(text, isError = false) {
  $("message").textContent = text;
  $("message").style.color = isError ? "#f0a35e" : "#9aa0a6";
}

// --- WebSocket ----------------------------------------------------------------------------------------------
function send(obj) {
  if (!socket || socket.readyState !== WebSocket.OPEN) { say("not connected; the request was not sent", true); return false; }
  obj.id = nextId++;
  socket.send(JSON.stringify(obj));
  return true;
}

function onMessage(ev) {
  const arrival = performance.now();
  let msg;
  try { msg = JSON.parse(ev.data); } catch { return; }
  if (msg.type === "frame") {
    stats.framesReceived += 1;
    if (stats.lastIndex >= 0 && msg.index !== stats.lastIndex + 1) stats.indexGaps += 1;
    stats.lastIndex = msg.index;
    if (pending) stats.superseded += 1;
    const extras = msg.extras || {};
    pending = { index: msg.index, w: names.map((n) => msg.weights[n] ?? extras[n] ?? 0), head: msg.head || [0, 0, 0],
      eyes: msg.eyes || [0, 0, 0, 0, 0, 0],
      arrival, arrivalFrame: stats.animationFrames };
  } else if (msg.type === "ack") {
    stats.acks.push(msg);
    if (msg.request === "text") {
      showEmotions(msg.emotions);
      say(`${msg.latency_ms.toFixed(1)} ms${msg.truncated ? " (text truncated)" : ""}${msg.emotions ? "" : " · this model has no emotion head"}`);
    }
  } else if (msg.type === "error") {
    stats.errors.push(msg);
    say(`${msg.code}: ${msg.message}`, true);
  }
}

function connect() {
  const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}${config.ws}`;
  const ws = new WebSocket(url);
  socket = ws;
  ws.onopen = () => {
    reconnectMs = RECONNECT_MIN_MS;
    stats.connected = true;
    stats.connects += 1;
    $("conn").className = "up";
    $("conn-text").textContent = "live";
    if (!$("idle").checked) send({ type: "idle", idle: false });
  };
  ws.onmessage = onMessage;
  ws.onclose = () => {
    if (socket !== ws) return;
    stats.connected = false;
    $("conn").className = "down";
    $("conn-text").textContent = `reconnecting in ${(reconnectMs / 1000).toFixed(2)} s`;
    setTimeout(connect, reconnectMs);
    reconnectMs = Math.min(RECONNECT_MAX_MS, reconnectMs * 2);
  };
}

// --- controls -----------------------------------------------------------------------------------------------
function intensity() { return Number($("intensity").value); }

$("prompt-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const text = $("prompt").value.trim();
  if (!text) { say("type an emotion description, e.g. \"furious scowl\"", true); return; }
  if (send({ type: "text", text, intensity: intensity() })) { lastText = text; $("prompt").select(); }
});
$("intensity").addEventListener("input", () => { $("intensity-value").textContent = intensity().toFixed(2); });
$("intensity").addEventListener("change", () => { if (lastText) send({ type: "text", text: lastText, intensity: intensity() }); });
$("idle").addEventListener("change", () => send({ type: "idle", idle: $("idle").checked }));

let recorder = null;
$("share").addEventListener("click", () => {
  const button = $("share");
  if (recorder) { recorder.stop(); return; }
  if (!window.MediaRecorder || !canvas.captureStream) { say("this browser cannot record the canvas", true); return; }
  const type = ["video/webm;codecs=vp9", "video/webm;codecs=vp8", "video/webm"].find((t) => MediaRecorder.isTypeSupported(t));
  if (!type) { say("this browser cannot record WebM", true); return; }
  const chunks = [];
  recorder = new MediaRecorder(canvas.captureStream(30), { mimeType: type });
  recorder.ondataavailable = (e) => { if (e.data.size) chunks.push(e.data); };
  recorder.onstop = () => {
    const blob = new Blob(chunks, { type: "video/webm" });
    stats.recording = { bytes: blob.size, type };
    const a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = `emo3d-${new Date().toISOString().replace(/[:.]/g, "-")}.webm`;
    a.click();
    setTimeout(() => URL.revokeObjectURL(a.href), 10000);
    recorder = null;
    button.classList.remove("recording");
    button.textContent = "share (record WebM)";
    say(`recorded ${(blob.size / 1024).toFixed(0)} KiB of WebM`);
  };
  recorder.start(250);
  button.classList.add("recording");
  button.textContent = "stop and save";
});

// --- start --------------------------------------------------------------------------------------------------
async function main() {
  config = await (await fetch("config.json")).json();
  names = config.names.concat(config.extras || []);   // the 52, then channels such as tongueOut
  $("idle").checked = config.idle;
  shapeBars = makeBars($("shapes"), Array(TOP_K).fill(""));
  emotionBars = makeBars($("emotions"), config.emotions);
  showEmotions(null);
  connect();
  try {
    await loadRig();
  } catch (e) {
    say(`could not load the rig ${config.rig.url}: ${e.message || e}`, true);
  }
  stats.ready = true;
  requestAnimationFrame(animate);
}
main();
