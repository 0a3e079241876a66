// Consentune dashboard: optional-capability sections and in-browser receipt verification.
// No framework, no external assets. Everything is written with textContent, never innerHTML.
"use strict";

const csrf = () => (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
const enc = new TextEncoder();

// ---- capability sections: load the JSON API route with this session, render whatever it returns ----
function cell(value) {
  if (value === null || value === undefined) return "—";
  return typeof value === "object" ? JSON.stringify(value) : String(value);
}

function renderRows(body, data) {
  const rows = Array.isArray(data) ? data : (Object.values(data || {}).find(Array.isArray) || []);
  body.replaceChildren();
  if (!rows.length) {
    const p = document.createElement("p");
    p.textContent = "Nothing reported.";
    body.append(p);
    return;
  }
  const columns = [...new Set(rows.flatMap((r) => Object.keys(r)))];
  const table = document.createElement("table");
  const head = table.createTHead().insertRow();
  for (const c of columns) {
    const th = document.createElement("th");
    th.scope = "col";
    th.textContent = c;
    head.append(th);
  }
  const tbody = table.createTBody();
  for (const r of rows) {
    const tr = tbody.insertRow();
    for (const c of columns) tr.insertCell().textContent = cell(r[c]);
  }
  body.append(table);
}

function loadCapabilities() {
  for (const section of document.querySelectorAll("section[data-endpoint]")) {
    const body = section.querySelector(".capability-body");
    fetch(section.dataset.endpoint, { headers: { Accept: "application/json", "X-CSRF-Token": csrf() }, credentials: "same-origin" })
      .then((r) => (r.ok ? r.json() : r.json().then((e) => Promise.reject(new Error((e.error || {}).message || r.status)))))
      .then((data) => renderRows(body, data))
      .catch((err) => { body.textContent = "Could not load: " + err.message; });
  }
}

// ---- receipts: docs/ledger.md, checked with WebCrypto (SHA-256, Ed25519) ----
class Rejected extends Error {}
const fail = (why) => { throw new Rejected(why); };

function codepointCompare(a, b) {
  const x = Array.from(a), y = Array.from(b);
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    const d = x[i].codePointAt(0) - y[i].codePointAt(0);
    if (d) return d;
  }
  return x.length - y.length;
}

function canonical(v) {
  if (v === null || typeof v === "boolean" || typeof v === "string") return JSON.stringify(v);
  if (typeof v === "number") {
    if (!Number.isSafeInteger(v)) fail("a number is not a safe integer");
    return String(v);
  }
  if (Array.isArray(v)) return "[" + v.map(canonical).join(",") + "]";
  const keys = Object.keys(v).sort(codepointCompare);
  return "{" + keys.map((k) => JSON.stringify(k) + ":" + canonical(v[k])).join(",") + "}";
}

function b64strict(text) {
  if (typeof text !== "string" || !/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4) fail("bad base64");
  const raw = Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
  if (btoa(String.fromCharCode(...raw)) !== text) fail("base64 is not canonical");
  return raw;
}

const concat = (...parts) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
};
const sha256 = async (bytes) => new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
const equal = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);
const hex = (b) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
const leafHash = (data) => sha256(concat(Uint8Array.of(0), data));
const nodeHash = (l, r) => sha256(concat(Uint8Array.of(1), l, r));

async function verifyInclusion(leaf, index, size, proof, root) {
  if (index >= size) fail("entry index is beyond the checkpoint");
  let fn = index, sn = size - 1, x = leaf;
  for (const p of proof) {
    if (sn === 0) fail("proof too long");
    if (fn % 2 === 1 || fn === sn) {
      x = await nodeHash(p, x);
      while (fn % 2 === 0 && fn !== 0) { fn = Math.floor(fn / 2); sn = Math.floor(sn / 2); }
    } else {
      x = await nodeHash(x, p);
    }
    fn = Math.floor(fn / 2); sn = Math.floor(sn / 2);
  }
  if (sn !== 0) fail("proof too short");
  if (!equal(x, root)) fail("an inclusion proof does not lead to the signed root");
}

async function importVerifier(verifierKey) {
  const [name, idHex, keyB64] = [verifierKey.split("+")[0], verifierKey.split("+")[1], verifierKey.split("+").slice(2).join("+")];
  const raw = b64strict(keyB64);
  if (raw.length !== 33 || raw[0] !== 1) fail("the verifier key is not an Ed25519 key");
  const id = (await sha256(concat(enc.encode(name + "\n"), raw))).slice(0, 4);
  if (hex(id) !== idHex) fail("the verifier key's id does not match its name and key");
  const key = await crypto.subtle.importKey("raw", raw.slice(1), { name: "Ed25519" }, false, ["verify"]);
  return { name, id, key };
}

async function verifyCheckpoint(note, verifier) {
  if (!note.endsWith("\n")) fail("checkpoint note does not end with a newline");
  const split = note.lastIndexOf("\n\n");
  if (split < 0) fail("checkpoint note has no signatures");
  const body = note.slice(0, split + 1);
  let good = false;
  for (const line of note.slice(split + 2, -1).split("\n")) {
    const m = /^\u2014 (\S+) (\S+)$/.exec(line);
    if (!m) fail("malformed signature line");
    const blob = b64strict(m[2]);
    if (m[1] !== verifier.name || blob.length < 4 || !equal(blob.slice(0, 4), verifier.id)) continue;
    const ok = await crypto.subtle.verify({ name: "Ed25519" }, verifier.key, blob.slice(4), enc.encode(body));
    if (!ok) fail("the checkpoint signature is invalid");
    good = true;
  }
  if (!good) fail("the checkpoint is not signed by this log's key");
  const lines = body.slice(0, -1).split("\n");
  if (lines.length < 3 || !/^(0|[1-9][0-9]*)$/.test(lines[1])) fail("checkpoint body is malformed");
  const root = b64strict(lines[2]);
  if (root.length !== 32) fail("checkpoint root is not 32 bytes");
  return { origin: lines[0], size: Number(lines[1]), root };
}

const ENTRY_KEYS = "action,actor,decision,purpose,reason,sequence,terms_version,time,track";

async function verifyReceipt(bytes, verifierKey) {
  let receipt;
  try { receipt = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes)); }
  catch (e) { fail("not UTF-8 JSON"); }
  if (!equal(enc.encode(canonical(receipt)), new Uint8Array(bytes))) fail("receipt bytes are not canonical JSON (altered?)");
  if (Object.keys(receipt).sort().join() !== "checkpoint,entries,format,subject" || receipt.format !== "consentune-receipt/v1") fail("not a consentune-receipt/v1");
  const subject = receipt.subject;
  const checkpoint = await verifyCheckpoint(receipt.checkpoint, await importVerifier(verifierKey));
  if (!Array.isArray(receipt.entries) || !receipt.entries.length) fail("receipt has no entries");
  let previous = -1;
  for (const item of receipt.entries) {
    const e = item.entry;
    if (Object.keys(e).sort().join() !== ENTRY_KEYS) fail("an entry has unexpected fields");
    if (e.track !== subject.track || (subject.purpose !== null && e.purpose !== subject.purpose)) fail(`entry ${e.sequence} is about another subject`);
    if (!(e.sequence > previous)) fail("entries are not in increasing order");
    previous = e.sequence;
    const proof = item.proof.map(b64strict);
    if (proof.some((p) => p.length !== 32)) fail("a proof hash is not 32 bytes");
    await verifyInclusion(await leafHash(enc.encode(canonical(e))), e.sequence, checkpoint.size, proof, checkpoint.root);
  }
  return { count: receipt.entries.length, checkpoint };
}

async function verifyConsistency(oldSize, newSize, oldRoot, newRoot, proof) {
  if (oldSize === 0 || newSize < oldSize) fail("an empty or larger old tree proves nothing");
  if (proof.some((p) => p.length !== 32)) fail("a consistency proof hash is not 32 bytes");
  if (oldSize === newSize) {
    if (proof.length || !equal(oldRoot, newRoot)) fail("same size but different roots: the log was rewritten");
    return;
  }
  if (!proof.length) fail("consistency proof is empty");
  const isPow2 = (n) => { while (n % 2 === 0) n /= 2; return n === 1; };
  const path = isPow2(oldSize) ? [oldRoot, ...proof] : proof;
  let fn = oldSize - 1, sn = newSize - 1;
  while (fn % 2 === 1) { fn = Math.floor(fn / 2); sn = Math.floor(sn / 2); }
  let fr = path[0], sr = path[0];
  for (const c of path.slice(1)) {
    if (sn === 0) fail("consistency proof too long");
    if (fn % 2 === 1 || fn === sn) {
      fr = await nodeHash(c, fr);
      sr = await nodeHash(c, sr);
      while (fn % 2 === 0 && fn !== 0) { fn = Math.floor(fn / 2); sn = Math.floor(sn / 2); }
    } else {
      sr = await nodeHash(sr, c);
    }
    fn = Math.floor(fn / 2); sn = Math.floor(sn / 2);
  }
  if (sn !== 0 || !equal(fr, oldRoot) || !equal(sr, newRoot)) fail("the current log does not extend the receipt's checkpoint");
}

// The receipt's checkpoint must be a prefix of today's log: nothing it proves was rewritten since.
async function checkAgainstCurrentLog(checkpoint, verifierKey) {
  const current = await (await fetch("/v1/ledger/checkpoint")).json();
  const now = await verifyCheckpoint(current.note, await importVerifier(verifierKey));
  if (now.size < checkpoint.size) fail("the server's checkpoint is older than the receipt's");
  let proof = [];
  if (now.size > checkpoint.size) {
    const r = await fetch(`/v1/ledger/proof/consistency?old=${checkpoint.size}&new=${now.size}`);
    if (!r.ok) fail("the server gave no consistency proof");
    proof = (await r.json()).proof.map(b64strict);
  }
  await verifyConsistency(checkpoint.size, now.size, checkpoint.root, now.root, proof);
  return now;
}

async function ed25519Available() {
  if (!window.crypto || !crypto.subtle) return false;
  try {
    await crypto.subtle.importKey("raw", new Uint8Array(32), { name: "Ed25519" }, false, ["verify"]);
    return true;
  } catch (e) { return false; }
}

function say(kind, text) {
  const out = document.getElementById("verify-result");
  const p = document.createElement("p");
  p.className = kind === "ok" ? "notice ok" : "error";
  p.id = kind === "ok" ? "verify-ok" : "verify-failed";
  p.setAttribute("role", kind === "ok" ? "status" : "alert");
  p.textContent = text;
  out.replaceChildren(p);
}

async function checkInBrowser(bytes, verifierKey, what) {
  try {
    const r = await verifyReceipt(bytes, verifierKey);
    const now = await checkAgainstCurrentLog(r.checkpoint, verifierKey);
    const later = now.size > r.checkpoint.size
      ? `today's log (size ${now.size}) extends it, so nothing it proves was rewritten since`
      : "it is today's log";
    say("ok", `Verified in this browser: all ${r.count} uses of ${what} are in the public log, checked against the log's signed state when it held ${r.checkpoint.size} entries (signed by ${r.checkpoint.origin}); ${later}.`);
  } catch (e) {
    say("fail", "Verification failed in this browser: " + (e instanceof Rejected ? e.message : "the receipt could not be read"));
  }
}

async function setUpVerify() {
  const form = document.getElementById("verify-form");
  if (!form) return;
  const button = document.getElementById("verify-browser");
  const file = document.getElementById("receipt-file");
  const key = form.dataset.verifierKey;
  if (!(await ed25519Available())) {
    const note = document.getElementById("browser-verify-note");
    if (note) note.textContent = "This browser has no Ed25519 in WebCrypto (or the page is not on a secure origin): verify on the server or offline.";
    if (file) file.disabled = true;
    return;
  }
  button.hidden = false;
  button.addEventListener("click", async () => {
    const response = await fetch(form.dataset.receipt, { credentials: "same-origin" });
    if (!response.ok) { say("fail", "Could not fetch the receipt (" + response.status + ")."); return; }
    await checkInBrowser(await response.arrayBuffer(), key, "the receipt");
  });
  if (file) {
    file.addEventListener("change", async () => {
      if (file.files.length) await checkInBrowser(await file.files[0].arrayBuffer(), key, file.files[0].name);
    });
  }
}

document.addEventListener("DOMContentLoaded", () => {
  loadCapabilities();
  setUpVerify();
});
