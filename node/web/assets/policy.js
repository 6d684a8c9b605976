// A consent's policy in plain sentences. The policy comes either from the chain's
// JSON (a consent as it holds it) or from a tx body's CBOR (what the patient is about
// to sign: policyFromCBOR), both in the chain's own form (consent.Policy).
import { day, plain, purposeNames } from "./common.js";

const RULES = { 1: "deny", 2: "permit" };

// policyFromCBOR turns a decoded CBOR policy (integer keys, as consent.Policy's cbor
// tags) into the JSON form. Unknown keys are refused: what the page cannot show,
// the patient must not sign.
export function policyFromCBOR(m) {
  need(m instanceof Map, "policy");
  onlyKeys(m, [1, 2, 3, 4]);
  return {
    base: RULES[m.get(1)] || need(false, "base rule"),
    start: m.get(2) || 0, end: m.get(3) || 0,
    provisions: (m.get(4) || []).map(provisionFromCBOR),
  };
}

function provisionFromCBOR(m) {
  need(m instanceof Map, "provision");
  onlyKeys(m, [1, 2, 3, 4, 5, 6, 7, 8]);
  return {
    type: RULES[m.get(1)] || need(false, "provision type"),
    actors: m.get(2) || [], purposes: m.get(3) || [], start: m.get(4) || 0, end: m.get(5) || 0,
    classes: m.get(6) || [], records: m.get(7) || [], except: (m.get(8) || []).map(provisionFromCBOR),
  };
}

function need(ok, what) {
  if (!ok) throw new Error("the prepared consent has a malformed " + what + "; nothing was signed");
}

function onlyKeys(m, allowed) {
  for (const k of m.keys()) need(allowed.includes(k), "field");
}

// describePolicy is the policy as a list of sentences; hospital names an ID.
export function describePolicy(p, hospital) {
  const lines = [];
  lines.push(p.base === "deny"
    ? "Nothing is shared unless a line below permits it."
    : "Everything is shared unless a line below denies it.");
  for (const pr of p.provisions || []) lines.push(...provision(pr, hospital, ""));
  lines.push(period(p.start, p.end, "The whole consent"));
  lines.push("Emergency access is not decided by consents: a hospital may break the glass, and a privacy officer reviews it.");
  return lines;
}

function provision(pr, hospital, indent) {
  const verb = pr.type === "permit" ? "may obtain" : "may never obtain";
  const who = pr.actors && pr.actors.length ? list(pr.actors.map(hospital)) : "Any hospital";
  const why = pr.purposes && pr.purposes.length ? list(pr.purposes.map((x) => plain(purposeNames, x) + " (" + x + ")")) : "any purpose";
  let what = "your records";
  if (pr.classes && pr.classes.length) {
    what = pr.type === "permit"
      ? "records whose every kind of data is among: " + pr.classes.join(", ")
      : "records holding any of: " + pr.classes.join(", ");
  }
  if (pr.records && pr.records.length) what += " (only records " + pr.records.join(", ") + ")";
  const lines = [indent + who + " " + verb + " " + what + ", for " + why + "."];
  if (pr.start || pr.end) lines.push(indent + "  " + period(pr.start, pr.end, "This line"));
  for (const ex of pr.except || []) {
    lines.push(...provision(ex, hospital, indent + "  Except: ").map((l) => l));
  }
  return lines;
}

function period(start, end, what) {
  if (!start && !end) return what + " has no time limit.";
  if (!end) return what + " holds from " + day(start) + " (UTC) on.";
  if (!start) return what + " holds until the end of " + day(end) + " (UTC).";
  return what + " holds from " + day(start) + " until the end of " + day(end) + " (UTC).";
}

function list(xs) {
  if (xs.length <= 1) return xs.join("");
  return xs.slice(0, -1).join(", ") + " and " + xs[xs.length - 1];
}
