// ragqa's page: ask (the draft streams in, then the verdict and its evidence), review
// (answers drawn at random, judged with one key; withheld questions answered), documents, status. No library, no build step. Document text is untrusted: everything from the
// server is put on the page as text (textContent, text nodes), never as HTML.
"use strict";

const $ = (selector, root = document) => root.querySelector(selector);
const KEY = "ragqa-api-key";
let history = [];          // [{question, answer}] of this conversation, for follow-ups
let threshold = null;      // the abstain threshold in use (from /v1/status)

class UiError extends Error {}

function el(tag, text, cls) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (cls) node.className = cls;
  return node;
}

function showKeyForm() {
  $("#key-form").hidden = false;
  $("#key-input").focus();
}

async function explain(response) {
  let detail = "";
  try {
    const body = await response.json();
    detail = (body.error && body.error.message) || (typeof body.detail === "string" ? body.detail : "");
  } catch (_) { /* not JSON */ }
  switch (response.status) {
    case 401:
      showKeyForm();
      return "This server needs its API key: enter it above, then try again.";
    case 403:
      return "This key may not do that: " + detail;
    case 413:
      return "That is larger than this server accepts. " + detail;
    case 422:
      return "The server could not take this request: " + (detail || "check what you entered.");
    case 503: {
      const after = response.headers.get("Retry-After");
      return "The server is busy with other questions. Try again in " + (after ? after + " seconds" : "a moment") +
        "." + (detail ? " (" + detail + ")" : "");
    }
    case 404:
      return detail || "Not found.";
    default:
      return "Something went wrong on the server (" + response.status + "). " + detail;
  }
}

async function api(path, options = {}) {
  const headers = Object.assign({}, options.headers || {});
  const key = sessionStorage.getItem(KEY);
  if (key) headers["Authorization"] = "Bearer " + key;
  let response;
  try {
    response = await fetch(path, Object.assign({}, options, { headers }));
  } catch (_) {
    throw new UiError("The server cannot be reached. Is `ragqa serve` still running?");
  }
  if (!response.ok) throw new UiError(await explain(response));
  return response;
}

function showError(where, message) {
  const node = $(where);
  node.textContent = message || "";
  node.hidden = !message;
}

// --- asking ----------------------------------------------------------------------

async function ask(event) {
  event.preventDefault();
  const input = $("#question");
  const question = input.value.trim();
  if (!question) return;
  const followUp = $("#follow-up").checked;
  if (!followUp) history = [];
  showError("#ask-error", "");
  const button = $("#ask-button");
  button.disabled = true;
  const turn = $("#turn-template").content.firstElementChild.cloneNode(true);
  $(".q", turn).textContent = question;
  $("#conversation").prepend(turn);
  try {
    const response = await api("/v1/ask", {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-Ragqa-Client": "page" },
      body: JSON.stringify({ question, stream: true, history }),
    });
    const answer = await readStream(response, turn);
    if (answer) {
      history.push({ question, answer: answer.abstained ? "" : answer.answer });
      history = history.slice(-5);
      input.value = "";
    }
  } catch (e) {
    turn.remove();
    showError("#ask-error", e instanceof UiError ? e.message : "Something went wrong: " + e);
  } finally {
    button.disabled = false;
  }
}

async function readStream(response, turn) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  const draft = $(".draft", turn);
  let buffer = "";
  let answer = null;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      const event = (block.match(/^event: (.*)$/m) || [])[1];
      const data = (block.match(/^data: (.*)$/m) || [])[1];
      if (!event || data === undefined) continue;
      const payload = JSON.parse(data);
      if (event === "token") draft.textContent += payload.text;
      else if (event === "answer") { answer = payload; render(turn, payload); }
      else if (event === "error") throw new UiError((payload.error && payload.error.message) || "The answer failed.");
    }
  }
  return answer;
}

function render(turn, a) {
  const draft = $(".draft", turn);
  draft.textContent = a.abstained ? a.draft : a.answer;
  draft.hidden = !draft.textContent;  // withheld before any draft was written
  draft.classList.toggle("withdrawn", a.abstained);
  draft.title = a.abstained ? "the draft, withdrawn" : "";
  if (a.abstained && a.draft) draft.setAttribute("aria-label", "withdrawn draft: " + a.draft);
  const verdict = $(".verdict", turn);
  verdict.hidden = false;
  const outcome = $(".outcome", verdict);
  outcome.textContent = a.answered_by === "person" ? (a.abstained ? "A person found that the documents do not answer this."
    : "Answered by a person") : a.abstained ? "Withheld: ragqa cannot answer this from these documents." : "Answered";
  outcome.className = "outcome " + (a.abstained ? "withheld" : "answered");
  $(".reason", verdict).textContent = "Why: " + a.reason;
  const box = $(".confidence", verdict);
  box.hidden = a.answered_by === "person";  // a person's answer has no model confidence
  if (!box.hidden) renderConfidence(box, a);
  renderSignals($(".signals tbody", verdict), a.signals || {});
  renderCitations($(".citations", verdict), a);
  renderSources($(".sources ol", verdict), a.sources || []);
  if (a.abstained && a.answered_by !== "person" && a.id) offerFollowUp(verdict, a.id);
}

// A withheld question goes to a person (the review panel's hand-off): the asker can look for their answer.
function offerFollowUp(verdict, id) {
  const box = el("p", null, "follow");
  const check = el("button", "Has a person answered?", "plain");
  check.type = "button";
  const said = el("span", "", "person");
  check.addEventListener("click", async () => {
    try {
      const q = await (await api("/v1/questions/" + id)).json();
      const p = q.person_answer;
      said.textContent = !p ? " Not yet: it is waiting for a person." : p.verdict === "unanswerable"
        ? " A person found that the documents do not answer it." : " A person answered: " + p.answer;
    } catch (e) {
      said.textContent = " " + e.message;
    }
  });
  box.append(check, said);
  verdict.append(box);
}

function renderConfidence(box, a) {
  const pct = Math.round(a.confidence * 100);
  const kind = a.calibrated ? "calibrated" : "uncalibrated";
  let about = "";
  if (threshold !== null && threshold <= 1) about = ", threshold " + threshold.toFixed(2) + " (marked)";
  else if (threshold !== null) about = ", no certified threshold for this model";
  $(".label", box).textContent = "Confidence " + a.confidence.toFixed(2) + " (" + kind + about + ")";
  $(".fill", box).style.width = pct + "%";
  const mark = $(".mark", box);
  mark.hidden = !(threshold !== null && threshold <= 1);
  if (!mark.hidden) mark.style.left = "calc(" + (threshold * 100).toFixed(1) + "% - 1px)";
  $(".bar", box).setAttribute("aria-label", "confidence " + pct + " percent, " + kind + about);
}

function renderSignals(tbody, signals) {
  tbody.replaceChildren();
  for (const [name, value] of Object.entries(signals)) {
    const row = el("tr");
    row.append(el("td", name), el("td", typeof value === "object" ? JSON.stringify(value) : value));
    tbody.append(row);
  }
}

// The quoted span inside the text around it, highlighted: before, <mark>quote</mark>, after.
function highlighted(text, quote) {
  const block = el("blockquote");
  const at = quote ? text.indexOf(quote) : -1;
  if (at < 0) {
    block.append(el("mark", quote || text));
    return block;
  }
  block.append(document.createTextNode(text.slice(0, at)), el("mark", quote),
    document.createTextNode(text.slice(at + quote.length)));
  return block;
}

function renderCitations(box, a) {
  box.replaceChildren();
  const citations = a.citations || [];
  if (!citations.length) return;
  box.append(el("h4", a.abstained ? "What the withdrawn draft cited" : "Evidence"));
  for (const c of citations) {
    const source = (a.sources || [])[c.n - 1];
    const item = el("div", null, "citation");
    const where = "[" + c.n + "] " + c.document + (c.page ? ", page " + c.page : "") +
      " (characters " + c.start + "-" + c.end + ")";
    item.append(el("div", where, "where"), highlighted(source ? source.text : c.quote, c.quote));
    box.append(item);
  }
}

function renderSources(list, sources) {
  list.replaceChildren();
  for (const s of sources) {
    const item = el("li");
    item.append(el("div", s.document + (s.page ? ", page " + s.page : "") + " - score " + s.score, "where"),
      el("div", s.text, "source-text"));
    list.append(item);
  }
}

// --- documents ---------------------------------------------------------------------

async function loadDocuments() {
  try {
    const body = await (await api("/v1/documents")).json();
    const list = $("#documents");
    list.replaceChildren();
    for (const d of body.documents) {
      const item = el("li");
      const remove = el("button", "Delete", "secondary");
      remove.type = "button";
      remove.setAttribute("aria-label", "Delete " + d.name);
      remove.addEventListener("click", () => removeDocument(d.name));
      item.append(el("span", d.name + " (" + d.chunks + " chunks)"), remove);
      list.append(item);
    }
    if (!body.documents.length) list.append(el("li", "No documents yet: upload one."));
    showError("#docs-error", "");
  } catch (e) {
    showError("#docs-error", e.message);
  }
}

async function removeDocument(name) {
  if (!confirm("Delete \"" + name + "\" from the index? Its chunks and vectors go too.")) return;
  try {
    await api("/v1/documents/" + encodeURIComponent(name), { method: "DELETE" });
    $("#upload-status").textContent = "Deleted " + name + ".";
  } catch (e) {
    showError("#docs-error", e.message);
  }
  loadDocuments();
  loadStatus();
}

async function upload(file) {
  const status = $("#upload-status");
  showError("#docs-error", "");
  status.textContent = "Uploading " + file.name + "...";
  const form = new FormData();
  form.append("file", file);
  try {
    const body = await (await api("/v1/documents", { method: "POST", body: form })).json();
    await follow(body.job.id, file.name);
  } catch (e) {
    status.textContent = "";
    showError("#docs-error", e.message);
  }
}

async function follow(jobId, name) {
  const status = $("#upload-status");
  for (;;) {
    const job = await (await api("/v1/jobs/" + jobId)).json();
    if (job.state === "done") {
      const r = job.result || {};
      status.textContent = name + ": ingested" + (r.chunks_embedded !== undefined ? " (" + r.chunks_embedded + " chunks)" : "") + ".";
      break;
    }
    if (job.state === "failed") {
      status.textContent = "";
      showError("#docs-error", name + " could not be ingested: " + (job.error || "unknown error"));
      break;
    }
    status.textContent = name + ": " + (job.state === "queued" ? "waiting for a worker" : "being ingested") + "...";
    await new Promise((done) => setTimeout(done, 700));
  }
  loadDocuments();
  loadStatus();
}

function setUpDropZone() {
  const zone = $("#drop-zone");
  const input = $("#file-input");
  input.addEventListener("change", () => { if (input.files.length) upload(input.files[0]); input.value = ""; });
  zone.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); input.click(); } });
  zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    if (e.dataTransfer.files.length) upload(e.dataTransfer.files[0]);
  });
}

// --- review ------------------------------------------------------------------------

let reviewing = null;  // the question under review, drawn at random by the server

async function loadProgress() {
  try {
    const p = await (await api("/v1/reviews/progress")).json();
    $("#review-progress").textContent = p.reviews_for_these_models + " reviews of this model's answers (" + p.wrong +
      " wrong) · " + p.unreviewed + " not yet reviewed · " + p.handoff_open + " withheld, waiting for a person";
  } catch (e) {
    $("#review-progress").textContent = e.message;
  }
}

async function nextReview() {
  showError("#review-error", "");
  try {
    const body = await (await api("/v1/reviews/next")).json();
    reviewing = body.question;
    const item = $("#review-item");
    if (!reviewing) {
      item.hidden = true;
      $("#review-progress").textContent = "Every answer has been reviewed.";
      return;
    }
    item.dataset.id = reviewing.id;
    $(".q", item).textContent = reviewing.question;
    $(".draft-text", item).textContent = reviewing.draft;
    const outcome = $(".outcome", item);
    outcome.textContent = reviewing.abstained ? "ragqa withheld it" : "ragqa answered with it";
    outcome.className = "outcome " + (reviewing.abstained ? "withheld" : "answered");
    $(".reason", item).textContent = "Why: " + reviewing.reason;
    renderCitations($(".citations", item), { citations: reviewing.citations, sources: reviewing.sources,
      abstained: reviewing.abstained });
    $("#review-answer").value = "";
    item.hidden = false;
    item.focus();
  } catch (e) {
    showError("#review-error", e.message);
  }
}

async function sendReview(question_id, verdict, answer, drawn) {
  const body = { question_id, verdict, drawn };
  if (answer) body.answer = answer;
  await api("/v1/reviews", { method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body) });
}

async function judge(verdict, answer) {
  if (!reviewing) return;
  try {
    if (verdict !== "skip") await sendReview(reviewing.id, verdict, answer, true);
    await nextReview();
    loadProgress();
    loadHandoff();
  } catch (e) {
    showError("#review-error", e.message);
  }
}

async function loadHandoff() {
  const list = $("#handoff");
  try {
    const body = await (await api("/v1/handoff?limit=20")).json();
    list.replaceChildren();
    for (const q of body.questions) {
      const item = el("li");
      const form = el("form", null, "row");
      const input = el("input");
      input.type = "text";
      input.maxLength = 4000;
      input.setAttribute("aria-label", "Your answer to: " + q.question);
      input.placeholder = "your answer";
      const save = el("button", "Answer");
      const none = el("button", "Not in the documents", "plain");
      none.type = "button";
      form.append(input, save, none);
      form.addEventListener("submit", async (e) => {
        e.preventDefault();
        if (input.value.trim()) await answerHandoff(q.id, "answer", input.value.trim());
      });
      none.addEventListener("click", () => answerHandoff(q.id, "unanswerable"));
      item.append(el("div", q.question, "q"), el("div", q.draft ? "ragqa's withheld draft: " + q.draft : "no draft", "hint"),
        form);
      list.append(item);
    }
    if (!body.questions.length) list.append(el("li", "None."));
  } catch (e) {
    list.replaceChildren(el("li", e.message));
  }
}

async function answerHandoff(id, verdict, answer) {
  try {
    await sendReview(id, verdict, answer, false);
  } catch (e) {
    showError("#review-error", e.message);
  }
  loadHandoff();
  loadProgress();
}

function setUpReview() {
  $("#review-start").addEventListener("click", nextReview);
  for (const b of document.querySelectorAll("#review-item [data-verdict]")) {
    b.addEventListener("click", () => judge(b.dataset.verdict));
  }
  $("#review-answer-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const typed = $("#review-answer").value.trim();
    if (typed) judge("answer", typed);
  });
  $("#review-item").addEventListener("keydown", (e) => {
    if (e.target.tagName === "INPUT") return;
    const verdict = { r: "right", w: "wrong", n: "unanswerable", s: "skip" }[e.key];
    if (verdict) { e.preventDefault(); judge(verdict); }
  });
}

// --- status ------------------------------------------------------------------------

async function loadStatus() {
  try {
    const s = await (await api("/v1/status")).json();
    threshold = typeof s.threshold === "number" ? s.threshold : null;
    const rows = [
      ["Documents", s.documents], ["Chunks", s.chunks],
      ["Embedder", s.embedder ? s.embedder.name + (s.embedder.backend ? " (" + s.embedder.backend + ")" : "") : "-"],
      ["Model", s.model || "-"], ["Calibration", s.calibration || "-"],
      ["Jobs", s.jobs ? Object.entries(s.jobs).map(([k, v]) => k + " " + v).join(", ") : "-"],
    ];
    const dl = $("#status");
    dl.replaceChildren();
    for (const [k, v] of rows) dl.append(el("dt", k), el("dd", v === undefined ? "-" : v));
  } catch (e) {
    showError("#docs-error", e.message);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("#ask-form").addEventListener("submit", ask);
  $("#key-form").addEventListener("submit", (e) => {
    e.preventDefault();
    sessionStorage.setItem(KEY, $("#key-input").value);
    $("#key-input").value = "";
    $("#key-form").hidden = true;
    loadDocuments();
    loadStatus();
    loadProgress();
    loadHandoff();
  });
  setUpDropZone();
  setUpReview();
  loadDocuments();
  loadStatus();
  loadProgress();
  loadHandoff();
});
