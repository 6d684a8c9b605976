// The privacy officer's page: sign in with the token once, search the access log,
// work the emergency review queue, open an event with its proof, export.
import { $, NodeError, call, day, download, el, emergencyKey, guard, keyedList, kindNames, latest, listen, plain, purposeNames, reasonNames, say, setCSRF, show, when } from "./common.js";

let names = {};
let last = null; // the last search, and its next page's cursor
let live = null; // the EventSource of the access log
const OUTCOMES = ["justified", "unjustified", "referred"];

async function start() {
  const s = await call("/audit-app/session");
  $("node-name").textContent = s.node.name + " — " + s.node.hospital;
  if (s.csrf) {
    return enter(s);
  }
  show("signed-out", true);
}

async function enter(s) {
  setCSRF(s.csrf);
  $("token").value = "";
  show("signed-out", false);
  show("signed-in", true);
  const hs = await call("/audit-app/api/hospitals");
  for (const h of hs) names[h.id] = h.name;
  $("q-hospital").replaceChildren(el("option", { value: "", text: "Any hospital" }),
    ...hs.map((h) => el("option", { value: h.id, text: h.name + " (" + h.id + ")" })));
  $("q-kind").replaceChildren(el("option", { value: "", text: "Any kind" }),
    ...Object.entries(kindNames).map(([k, v]) => el("option", { value: k, text: v })));
  await Promise.all([loadQueue(), search(false)]);
  follow();
}

// follow listens to the access log as it is committed and refreshes the review
// queue when an emergency access or a review arrives.
function follow() {
  if (live) live.close();
  live = listen("/audit-app/api/stream", "live-state", "Live: new emergency accesses and reviews appear as they are committed.", (e) => {
    if (e.kind === "emergency-access" || e.kind === "emergency-reviewed") {
      loadQueue().catch((err) => say("alert", err.message));
    }
  });
}

function hospital(id) {
  return names[id] ? names[id] + " (" + id + ")" : id || "—";
}

// loadQueue shows the review queue. An item already shown and unchanged stays the
// same element, so the outcome chosen in it, its focus and a click on its way are
// kept; a refresh that changes nothing changes nothing in the page.
const loadQueue = latest(() => call("/audit-app/api/emergencies"), (q) => {
  const count = q.unreviewed === 1 ? "1 emergency access awaits review." : q.unreviewed + " emergency accesses await review.";
  if ($("queue-count").textContent !== count) $("queue-count").textContent = count; // said again, it would be announced again
  keyedList($("queue"), q.emergencies, emergencyKey, queueItem);
});

function queueItem(e) {
  const d = e.decision;
  const li = el("li", { class: e.review ? "emergency reviewed" : "emergency unreviewed", "data-grant": d.id },
    el("p", {}, el("strong", { text: hospital(d.requester) }), " broke the glass on " + when(d.time) +
      " — " + plain(reasonNames, d.emergency)),
    el("p", { class: "muted" }, "Patient ", el("code", { class: "id", text: d.patient }), ", record ", el("code", { text: d.record }),
      ", decision ", el("code", { text: d.id })));
  if (e.review) {
    li.append(el("p", { class: "outcome", text: "Reviewed: " + plain(reasonNames, e.review.outcome) + " by " + hospital(e.review.reviewer) + " at block " + e.review.height }));
    return li;
  }
  const id = "outcome-" + d.id;
  const select = el("select", { id }, ...OUTCOMES.map((o) => el("option", { value: o, text: plain(reasonNames, o) })));
  const button = el("button", { type: "button", id: "review-" + d.id, text: "Record this review" });
  guard(button, "alert", async () => {
    const r = await call("/audit-app/api/review", { grant: d.id, outcome: select.value });
    say("status", "Review recorded on the chain at block " + r.height + ".");
    await loadQueue();
  });
  li.append(el("label", { for: id, text: "Outcome" }), select, button);
  return li;
}

function filters() {
  return {
    patient: $("q-patient").value.trim(), hospital: $("q-hospital").value, kind: $("q-kind").value,
    from: $("q-from").value, to: $("q-to").value,
  };
}

async function search(older) {
  const f = older && last ? { ...last.filter, before: last.next } : { ...filters(), limit: Number($("q-limit").value) };
  const page = await call("/audit-app/api/events", f);
  const body = $("results").tBodies[0];
  if (!older) body.replaceChildren();
  for (const e of page.events) body.append(row(e));
  last = { filter: { ...f, before: 0 }, next: page.next || 0 };
  show("results", body.rows.length > 0);
  show("no-results", body.rows.length === 0);
  show("older", !!page.next);
}

function row(e) {
  const open = el("button", { type: "button", class: "secondary", text: "Open" });
  open.setAttribute("aria-label", "Open event " + e.index);
  guard(open, "alert", () => openEntry(e.index));
  const detail = [e.purpose && "purpose " + plain(purposeNames, e.purpose), e.reason && plain(reasonNames, e.reason),
    e.recipient && "to " + hospital(e.recipient), e.record && "record " + e.record.slice(0, 8) + "…",
    e.kind === "custody-changed" && e.custodians && "now held by " + e.custodians.map(hospital).join(", ")].filter(Boolean).join("; ");
  return el("tr", { "data-index": String(e.index), "data-kind": e.kind },
    el("td", { text: String(e.index) }), el("td", { text: when(e.time) }), el("td", { text: plain(kindNames, e.kind) }),
    el("td", { text: hospital(e.hospital) }), el("td", {}, el("code", { class: "id", text: e.patient.slice(0, 12) + "…", title: e.patient })),
    el("td", { text: detail }), el("td", {}, open));
}

async function openEntry(index) {
  const entry = await call("/audit-app/api/entry", { index });
  const e = entry.event || {};
  const fields = [["Index", entry.index], ["Time", when(e.time)], ["Block", e.height], ["Kind", plain(kindNames, e.kind)],
    ["Hospital", hospital(e.hospital)], ["Patient", e.patient], ["Record", e.record], ["Purpose", e.purpose],
    ["Reason", e.reason && plain(reasonNames, e.reason)], ["Tx", e.tx]];
  $("entry-fields").replaceChildren(...fields.filter(([, v]) => v !== undefined && v !== "").flatMap(([k, v]) =>
    [el("dt", { text: k }), el("dd", { text: String(v) })]));
  $("entry-proof").replaceChildren(proofText(entry.proof));
  $("entry-raw").textContent = JSON.stringify(entry, null, 2);
  show("entry", true);
  $("entry").focus();
}

function proofText(p) {
  if (p && p.verified) {
    return el("strong", { class: "verified", text: "Inclusion proof checked: this event is in the access log of " + p.log_size +
      " events whose root the validators signed (more than 2/3 of their voting power) in the header after block " + p.height +
      ". The proof's " + (p.hashes || []).length + " hashes are below." });
  }
  return el("strong", { class: "unverified", text: "The inclusion proof was not checked: " + ((p && p.problem) || "no proof") + "." });
}

async function exportEvents() {
  const bundle = await call("/audit-app/api/export", { ...filters(), limit: 500 });
  download("audit-events-" + day(Date.now() / 1000) + ".json", JSON.stringify(bundle, null, 2), "application/fhir+json");
  const more = (bundle.link || []).some((l) => l.relation === "next");
  say("status", "Exported " + (bundle.entry || []).length + " AuditEvents" + (more ? " (the first 500; narrow the search for the rest)." : "."));
}

async function accounting(format) {
  const res = await call("/audit-app/api/accounting", { patient: $("acc-patient").value.trim(), format }, { raw: true });
  download("accounting-" + day(Date.now() / 1000) + "." + format, await res.text(), format === "csv" ? "text/csv" : "application/json");
  say("status", "The accounting was downloaded.");
}

function wire() {
  guard($("sign-in"), "alert", async () => enter(await call("/audit-app/session", { token: $("token").value.trim() })));
  guard($("sign-out"), "alert", async () => {
    if (live) live.close();
    await call("/audit-app/session/end", {});
    show("signed-in", false);
    show("signed-out", true);
  });
  guard($("search"), "alert", () => search(false));
  guard($("older"), "alert", () => search(true));
  guard($("export"), "alert", exportEvents);
  guard($("acc-csv"), "alert", () => accounting("csv"));
  guard($("acc-json"), "alert", () => accounting("json"));
  for (const f of ["signin-form", "search-form", "acc-form"]) {
    $(f).addEventListener("submit", (ev) => ev.preventDefault());
  }
}

wire();
start().catch((e) => say("alert", e instanceof NodeError ? e.message : "This page could not start: " + e.message));
