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

async function verifyReceiptFile(bytes, verifierKey) {
  let format = null;
  try { format = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes)).format; } catch (e) { /* reported below */ }
  if (format !== "consentune-receipt/v2") return { ...(await verifyReceipt(bytes, verifierKey)), complete: true };
  const r = await verifyPage(bytes, await importVerifier(verifierKey), null);
  return { count: r.count, checkpoint: r.checkpoint, complete: r.page.page.after === -1 && r.page.page.next === null };
}

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

// ---- v2: paged receipts, each page one multi-leaf proof (docs/ledger.md) ----
const PAGE_KEYS = "checkpoint,entries,format,page,proof,subject";
const DECISIONS = ["allow", "deny", "record"];
const TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/;
const safeInt = (v) => Number.isSafeInteger(v) && v >= 0;

function checkEntryFields(e) {
  if (e === null || typeof e !== "object" || Array.isArray(e) || Object.keys(e).sort().join() !== ENTRY_KEYS) fail("an entry has unexpected fields");
  const text = (v) => typeof v === "string";
  const ok = safeInt(e.sequence) && (e.terms_version === null || safeInt(e.terms_version))
    && text(e.actor) && e.actor && text(e.action) && e.action && text(e.reason) && DECISIONS.includes(e.decision)
    && (e.purpose === null || text(e.purpose)) && (e.track === null || text(e.track))
    && text(e.time) && TIME.test(e.time) && realTime(e.time);
  if (!ok) fail(`entry ${e.sequence} is not a valid ledger entry`);
}

function realTime(t) {
  const d = new Date(t.slice(0, 19) + "Z");
  return !Number.isNaN(d.getTime()) && d.toISOString().slice(0, 19) === t.slice(0, 19);
}

const splitSize = (n) => { let k = 1; while (k * 2 < n) k *= 2; return k; };

async function completeRoot(hashes) {
  if (hashes.length === 1) return hashes[0];
  const k = splitSize(hashes.length);
  return nodeHash(await completeRoot(hashes.slice(0, k)), await completeRoot(hashes.slice(k)));
}

// The root of a size-leaf tree from the listed leaves and their multi-leaf proof (missing subtrees, left to right).
async function rootFromMultiproof(indices, leaves, size, proof) {
  let used = 0;
  const firstAtOrAfter = (value, lo, hi) => {
    while (lo < hi) { const mid = (lo + hi) >> 1; if (indices[mid] < value) lo = mid + 1; else hi = mid; }
    return lo;
  };
  async function walk(lo, hi, start, end) {
    if (hi - lo === end - start) return completeRoot(leaves.slice(lo, hi));
    const k = splitSize(end - start);
    const mid = firstAtOrAfter(start + k, lo, hi);
    const parts = [];
    for (const [has, a, b, c, d] of [[mid > lo, lo, mid, start, start + k], [hi > mid, mid, hi, start + k, end]]) {
      if (has) parts.push(await walk(a, b, c, d));
      else if (used < proof.length) parts.push(proof[used++]);
      else fail("the multi-leaf proof is too short");
    }
    return nodeHash(parts[0], parts[1]);
  }
  const root = await walk(0, indices.length, 0, size);
  if (used !== proof.length) fail("the multi-leaf proof is too long");
  return root;
}

async function verifyPage(bytes, verifier, checkpoint) {
  let page;
  try { page = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes)); }
  catch (e) { fail("not UTF-8 JSON"); }
  if (!equal(enc.encode(canonical(page)), new Uint8Array(bytes))) fail("receipt page is not canonical JSON (altered?)");
  if (Object.keys(page).sort().join() !== PAGE_KEYS || page.format !== "consentune-receipt/v2") fail("not a consentune-receipt/v2 page");
  const { subject, entries } = page;
  if (!subject || Object.keys(subject).sort().join() !== "purpose,track" || typeof subject.track !== "string"
      || !(subject.purpose === null || typeof subject.purpose === "string")) fail("the receipt's subject is malformed");
  const cursor = page.page;
  if (!cursor || Object.keys(cursor).sort().join() !== "after,next" || !(cursor.after === -1 || safeInt(cursor.after))
      || !(cursor.next === null || safeInt(cursor.next))) fail("the page cursor is malformed");
  checkpoint = checkpoint || await verifyCheckpoint(page.checkpoint, verifier);
  if (!Array.isArray(entries) || !entries.length) fail("the page has no entries");
  if (!Array.isArray(page.proof)) fail("the page's proof is not a list");
  const proof = page.proof.map(b64strict);
  if (proof.some((p) => p.length !== 32)) fail("a proof hash is not 32 bytes");
  let previous = cursor.after;
  const indices = [], leaves = [];
  for (const e of entries) {
    checkEntryFields(e);
    if (e.track !== subject.track || (subject.purpose !== null && e.purpose !== subject.purpose)) fail(`entry ${e.sequence} is about another subject`);
    if (!(e.sequence > previous)) fail("entries are not in increasing order");
    if (e.sequence >= checkpoint.size) fail("an entry is beyond the checkpoint");
    previous = e.sequence;
    indices.push(e.sequence);
    leaves.push(await leafHash(enc.encode(canonical(e))));
  }
  if (cursor.next !== null && cursor.next !== previous) fail("the page's next cursor is not its last entry");
  if (!equal(await rootFromMultiproof(indices, leaves, checkpoint.size, proof), checkpoint.root)) fail("the entries and proof do not lead to the signed root");
  return { page, checkpoint, count: entries.length, last: previous };
}

// Every page from the first (after -1) to the one whose next is null, against one checkpoint and subject.
async function verifyPages(nextPage, verifierKey) {
  const verifier = await importVerifier(verifierKey);
  let first = null, after = -1, count = 0, pages = 0;
  for (;;) {
    const r = await verifyPage(await nextPage(after, first && first.checkpoint.size), verifier, first && first.checkpoint);
    if (first && (r.page.checkpoint !== first.page.checkpoint || canonical(r.page.subject) !== canonical(first.page.subject))) fail(`page ${pages + 1} has another checkpoint or subject`);
    if (r.page.page.after !== after) fail(`page ${pages + 1} starts after ${r.page.page.after}, not after ${after}`);
    first = first || r;
    count += r.count; pages += 1; after = r.last;
    if (r.page.page.next === null) return { count, pages, checkpoint: first.checkpoint, complete: true };
  }
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

async function checkInBrowser(verify, verifierKey, what) {
  try {
    const r = await verify();
    const now = await checkAgainstCurrentLog(r.checkpoint, verifierKey);
    const later = now.size > r.checkpoint.size
      ? `today's log (size ${now.size}) extends it, so nothing it proves was rewritten since`
      : "it is today's log";
    const which = r.complete ? `all ${r.count} uses` : `${r.count} uses (one page of a longer receipt)`;
    const paged = r.pages > 1 ? ` in ${r.pages} pages` : "";
    say("ok", `Verified in this browser: ${which} of ${what} are in the public log${paged}, checked against the log's signed state when it held ${r.checkpoint.size} entries (signed by ${r.checkpoint.origin}); ${later}.`);
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
  const nextPage = async (after, size) => {
    const url = `${form.dataset.receiptPages}&after=${after}` + (size ? `&size=${size}` : "");
    const response = await fetch(url, { credentials: "same-origin" });
    if (!response.ok) fail(`could not fetch a receipt page (${response.status})`);
    return response.arrayBuffer();
  };
  button.addEventListener("click", () => checkInBrowser(() => verifyPages(nextPage, key), key, "the track"));
  if (file) {
    file.addEventListener("change", async () => {
      if (!file.files.length) return;
      const bytes = await file.files[0].arrayBuffer();
      await checkInBrowser(() => verifyReceiptFile(bytes, key), key, file.files[0].name);
    });
  }
}

document.addEventListener("DOMContentLoaded", () => {
  loadCapabilities();
  setUpVerify();
});
