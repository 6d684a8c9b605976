// The patient's page: key, sign-in, records, consents, live accesses, accounting.
import { $, NodeError, UserError, call, day, download, el, emergencyKey, guard, keyedList, kindNames, latest, listen, plain, purposeNames, reasonNames, say, setCSRF, show, when } from "./common.js";
import { decodeCBOR } from "./cbor.js";
import { createKey, forgetKey, fromB64, importKeygen, loadKey, restoreKey, sign, toB64 } from "./keys.js";
import { describePolicy, policyFromCBOR } from "./policy.js";

let node = null; // this node's identity: {hospital, name, chain_id}
let key = null; // {patient, privateKey}
let me = "";
let names = {}; // hospital ID → name
let pending = null; // the body bytes awaiting the patient's signature
let live = null; // the EventSource
const shown = new Set(); // log indexes listed

async function start() {
  node = await call("/app/api/info");
  $("node-name").textContent = node.name + " — " + node.hospital;
  key = await loadKey();
  const s = await call("/app/session");
  if (s.patient && key && s.patient === key.patient) {
    return enter(s);
  }
  if (s.patient) {
    setCSRF(s.csrf);
    await call("/app/session/end", {});
  }
  showKeyState();
}

function showKeyState() {
  show("signed-in", false);
  show("no-key", !key);
  show("signed-out", !!key);
  if (key) {
    $("key-patient").textContent = key.patient;
  }
}

// signIn proves the key: the node's one-time challenge, signed in the exact form
// the node checks (SignInMessage), which names this chain and this origin.
async function signIn() {
  const { challenge } = await call("/app/session/challenge", {});
  if (!/^[0-9a-f]{64}$/.test(challenge) || /[\n\r]/.test(node.chain_id)) {
    throw new Error("the node sent a malformed challenge");
  }
  const msg = "medledger patient sign-in\nchain: " + node.chain_id + "\norigin: " + location.origin + "\nchallenge: " + challenge + "\n";
  const sig = await sign(key, new TextEncoder().encode(msg));
  const s = await call("/app/session", { patient: key.patient, challenge, signature: toB64(sig) });
  await enter(s);
}

async function enter(s) {
  setCSRF(s.csrf);
  me = s.patient;
  $("me").textContent = me;
  show("no-key", false);
  show("signed-out", false);
  show("signed-in", true);
  await Promise.all([loadVocabulary(), loadRecords(), loadConsents(), loadActivity()]);
  follow();
  say("status", "Signed in.");
}

async function loadVocabulary() {
  const v = await call("/app/api/vocabulary");
  for (const h of v.hospitals) names[h.id] = h.name;
  const hs = $("grant-hospitals");
  hs.replaceChildren(...v.hospitals.map((h) =>
    el("label", {}, el("input", { type: "checkbox", name: "hospital", value: h.id }), " " + h.name + " (" + h.id + ")")));
  const ps = $("grant-purposes");
  ps.replaceChildren(...v.purposes.map((p) =>
    el("label", {}, el("input", { type: "checkbox", name: "purpose", value: p, checked: p === "TREAT" }), " " + plain(purposeNames, p) + " (" + p + ")")));
  const own = new Set(v.own_classes);
  const options = () => [
    el("optgroup", { label: "In your records" }, ...v.own_classes.map((c) => el("option", { value: c, text: c }))),
    el("optgroup", { label: "All kinds" }, ...v.classes.filter((c) => !own.has(c)).map((c) => el("option", { value: c, text: c }))),
  ];
  $("grant-classes").replaceChildren(...options());
  $("grant-except").replaceChildren(...options());
}

function hospital(id) {
  return names[id] ? names[id] + " (" + id + ")" : id;
}

async function loadRecords() {
  const { records, hospitals } = await call("/app/api/records");
  for (const h of hospitals) names[h.id] = h.name;
  const body = $("records").tBodies[0];
  body.replaceChildren(...records.map((r) => el("tr", { "data-record": r.id },
    el("td", { text: r.time ? when(r.time) : "block " + r.height }),
    el("td", { text: r.custodians.map(hospital).join(", ") }),
    el("td", { text: r.classes.join(", ") + (r.erased ? " (erased)" : "") }))));
  show("records", records.length > 0);
  show("no-records", records.length === 0);
}

async function loadConsents() {
  const cs = await call("/app/api/consents");
  $("consents").replaceChildren(...cs.slice().reverse().map(consentItem));
  show("no-consents", cs.length === 0);
}

function consentItem(c) {
  const li = el("li", { class: c.revoked ? "consent revoked" : "consent", "data-consent": c.id },
    el("p", {}, el("strong", { text: c.revoked ? "Revoked" : "In force" }),
      " — given " + when(c.time) + (c.revoked ? ", revoked at block " + c.revoked : "")),
    el("ul", {}, ...describePolicy(c.policy, hospital).map((line) => el("li", { text: line }))));
  if (!c.revoked) {
    const b = el("button", { type: "button", class: "secondary", text: "Revoke this consent" });
    guard(b, "alert", async () => review(await call("/app/api/revoke/prepare", { consent: c.id }), { revoke: c.id }));
    li.append(b);
  }
  return li;
}

// choices reads the grant form.
function choices() {
  const checked = (name) => Array.from(document.querySelectorAll("input[name=" + name + "]:checked"), (i) => i.value);
  const selected = (id) => Array.from($(id).selectedOptions, (o) => o.value);
  const only = document.querySelector("input[name=scope]:checked").value === "only";
  return {
    hospitals: checked("hospital"), purposes: checked("purpose"),
    classes: only ? selected("grant-classes") : [], except_classes: selected("grant-except"),
    start: $("grant-start").value, end: $("grant-end").value,
  };
}

// review decodes the body the node prepared and shows what it says — from the very
// bytes that will be signed — refusing anything that is not what the patient asked
// for (want: {grant: true}, or {revoke: the consent ID clicked}): this patient's
// grant, or the revocation of that very consent, on this chain.
function review(prep, want) {
  const bytes = fromB64(prep.body);
  const lines = summary(decodeCBOR(bytes), want);
  pending = bytes;
  $("confirm-summary").replaceChildren(...lines.map((l) => el("li", { text: l })));
  show("confirm", true);
  $("confirm").focus();
}

function summary(body, want) {
  if (!(body instanceof Map) || body.get(1) !== node.chain_id) {
    throw new Error("the node prepared something for another network; nothing was signed");
  }
  const kind = body.get(4);
  if (want.grant && kind === 3 && body.get(12) instanceof Map && body.get(12).get(1) === me) {
    return ["You give this consent:", ...describePolicy(policyFromCBOR(body.get(12).get(2)), hospital)];
  }
  if (want.revoke && kind === 4 && body.get(13) instanceof Map) {
    if (body.get(13).get(1) !== want.revoke) {
      throw new UserError("the node prepared the revocation of a different consent than the one you chose; nothing was signed");
    }
    return ["You revoke consent " + want.revoke + ": from the block that records this, it permits nothing."];
  }
  throw new Error("the node prepared something other than your consent; nothing was signed");
}

async function signPending() {
  const bytes = pending;
  if (!bytes) return;
  const sig = await sign(key, bytes);
  const done = await call("/app/api/submit", { body: toB64(bytes), signature: toB64(sig) });
  pending = null;
  show("confirm", false);
  say("status", (done.kind === "grant" ? "Your consent" : "Your revocation") + " is on the chain (block " + done.height + ").");
  await loadConsents();
}

async function loadActivity() {
  const a = await call("/app/api/activity");
  for (const h of a.hospitals) names[h.id] = h.name;
  shown.clear();
  $("activity").replaceChildren();
  for (const e of a.events.slice().reverse()) addEvent(e);
  showEmergencies(a.emergencies);
}

// refreshEmergencies shows the emergency accesses again, when one or its review
// arrives on the live stream.
const refreshEmergencies = latest(() => call("/app/api/activity"), (a) => showEmergencies(a.emergencies));

// showEmergencies lists the emergency accesses; one already shown and unchanged
// stays as it is.
function showEmergencies(list) {
  keyedList($("emergencies"), list, emergencyKey, (e) => {
    const d = e.decision;
    const outcome = e.review ? "reviewed: " + plain(reasonNames, e.review.outcome) + " (by " + hospital(e.review.reviewer) + ")" : "awaiting review";
    return el("li", { class: e.review ? "emergency reviewed" : "emergency unreviewed", "data-grant": d.id },
      el("strong", { text: hospital(d.requester) }),
      " broke the glass on " + when(d.time) + " — " + plain(reasonNames, d.emergency) + "; ",
      el("span", { class: "outcome", text: outcome }));
  });
  show("no-emergencies", list.length === 0);
}

function eventText(e) {
  const what = plain(kindNames, e.kind);
  if (e.kind === "custody-changed") {
    const why = !e.hospital ? "a custodian changed" : e.reason === "hand-over" ? hospital(e.hospital) + " handed its custody over" : hospital(e.hospital) + " left the consortium";
    return what + ": " + why + " — now held by " + (e.custodians || []).map(hospital).join(", ");
  }
  const who = e.hospital ? hospital(e.hospital) : "You";
  const parts = [what + ": " + who];
  if (e.recipient) parts.push("to " + hospital(e.recipient));
  if (e.purpose) parts.push("for " + plain(purposeNames, e.purpose));
  if (e.kind === "access-denied" && e.reason) parts.push("— refused: " + plain(reasonNames, e.reason));
  else if (e.kind === "emergency-access") parts.push("— reason: " + plain(reasonNames, e.reason));
  else if (e.kind === "emergency-reviewed") parts.push("— " + plain(reasonNames, e.reason));
  return parts.join(" ");
}

function addEvent(e) {
  if (shown.has(e.index)) return;
  shown.add(e.index);
  const cls = e.kind === "access-denied" ? "event denied" : e.kind.startsWith("emergency") ? "event emergency" : "event";
  $("activity").prepend(el("li", { class: cls, "data-kind": e.kind, "data-index": String(e.index) },
    el("time", { text: when(e.time) }), " ", eventText(e)));
  show("no-activity", false);
}

// follow listens to the live stream of the patient's events.
function follow() {
  if (live) live.close();
  live = listen("/app/api/events", "live-state", "Live.", (e) => {
    addEvent(e);
    if (e.kind === "emergency-access" || e.kind === "emergency-reviewed") {
      refreshEmergencies().catch((err) => say("alert", err.message));
    }
  });
}

async function fetchAccounting(format) {
  const res = await call("/app/api/accounting?format=" + format, undefined, { raw: true });
  const text = await res.text();
  download("accounting-of-disclosures-" + day(Date.now() / 1000) + "." + format, text, format === "csv" ? "text/csv" : "application/json");
  say("status", "Your accounting of disclosures was downloaded.");
}

async function readFile(input) {
  if (!input.files || !input.files.length) {
    throw new UserError("choose a file first");
  }
  return Promise.all(Array.from(input.files, (f) => f.text()));
}

function wire() {
  guard($("create-key"), "alert", async () => {
    const p = $("create-pass").value;
    if (p !== $("create-pass2").value) throw new UserError("the two passphrases differ");
    const { key: k, backup } = await createKey(p);
    key = k;
    download("medledger-key-backup-" + k.patient.slice(0, 8) + ".json", backup, "application/json");
    say("status", "Your key was created and its backup file downloaded. Keep the file and its passphrase safe.");
    await signIn();
  });
  guard($("restore-key"), "alert", async () => {
    const [text] = await readFile($("restore-file"));
    key = await restoreKey(text, $("restore-pass").value);
    await signIn();
  });
  guard($("import-key"), "alert", async () => {
    const texts = await readFile($("import-files"));
    if (texts.length !== 2) throw new UserError("choose both files: kek.json and patient.keyset.json");
    key = await importKeygen(texts[0], texts[1]);
    await signIn();
  });
  guard($("sign-in"), "alert", signIn);
  guard($("forget-key"), "alert", async () => {
    await forgetKey();
    key = null;
    showKeyState();
  });
  guard($("sign-out"), "alert", async () => {
    if (live) live.close();
    await call("/app/session/end", {});
    showKeyState();
    say("status", "Signed out.");
  });
  guard($("grant-review"), "alert", async () => review(await call("/app/api/grant/prepare", choices()), { grant: true }));
  guard($("confirm-sign"), "alert", signPending);
  $("confirm-cancel").addEventListener("click", () => {
    pending = null;
    show("confirm", false);
  });
  guard($("accounting-csv"), "alert", () => fetchAccounting("csv"));
  guard($("accounting-json"), "alert", () => fetchAccounting("json"));
  for (const f of ["create-form", "restore-form", "import-form", "grant-form"]) {
    $(f).addEventListener("submit", (ev) => ev.preventDefault());
  }
}

wire();
start().catch((e) => say("alert", e instanceof NodeError ? e.message : "This page could not start: " + e.message));
