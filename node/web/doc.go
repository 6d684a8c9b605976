// Package web serves a hospital node's two web pages, on the node's HTTP server
// beside the API: the patient's page under /app/ and the privacy officer's under
// /audit-app/. Their HTML, CSS and JavaScript are embedded in the binary (assets/);
// nothing is fetched from anywhere else.
//
// # Invariants
//
//   - A patient's private key never reaches the node. The page holds it (WebCrypto
//     Ed25519, non-extractable, in the browser's IndexedDB) and signs in by signing a
//     one-time challenge; the node then knows the patient only by the session cookie,
//     and every patient endpoint answers for that session's patient only.
//   - A consent change reaches the chain only as the patient signed it: the node
//     prepares the tx body, the page decodes those exact bytes, shows what the chain
//     will enforce, signs them, and the node checks that the signature is the session
//     patient's and that the body is a grant or revocation of their own.
//   - A privacy officer signs in once with their bearer token (role privacy-officer);
//     the node keeps the token in memory with the session and calls the API with it,
//     so the officer's page can do exactly what the token may do through the API
//     (its live review queue included: the API's event stream, proxied).
//   - A patient's consent changes through the page count against the same rate
//     limits as the API's anonymous consent operations, per client address and per
//     patient (Config.Rate: the node shares the API's, so both spend one allowance),
//     and against a limit of the session's own; over any, 429 and nothing submitted.
//   - Every state-changing POST needs the session's CSRF token (X-CSRF-Token) and a
//     same-origin Origin header; a request failing either changes nothing. The origin
//     is Config.PublicOrigin when set (behind a proxy), else the request's own; never
//     an X-Forwarded-* header.
//   - Sessions are cookies (HttpOnly, SameSite=Strict, Secure over TLS or an https
//     public origin) that expire after an idle time and a maximum life; at most
//     MaxSessions patients' and, apart, MaxSessions officers' live at once. A patient
//     key holds one session (a new sign-in replaces it) and a client address a
//     bounded number; sign-in challenges are rate-limited per address, which holds at
//     most a few unanswered.
//   - A session holds at most two live streams; they end as soon as it does.
//   - No patient ID or PHI in a URL (queries travel in POST bodies) or in a log line
//     (method, route, status, duration only). Every answer carries a strict
//     Content-Security-Policy: scripts, styles and connections from this origin only,
//     no inline script.
//   - Errors are FHIR OperationOutcomes, as the API's (the pages show their text).
package web
