// The carrier simulator's phones page: polls GET /sim/threads every second and texts back
// through POST /sim/inbound. Every text from the server is written with textContent, never
// parsed as HTML: a message body is untrusted.
"use strict";

const POLL_MS = 1000;
const cards = new Map();   // member number → {card, seen}
let lastBody = "";

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function shortTime(iso) {
  const at = new Date(iso);
  return isNaN(at) ? "" : at.toLocaleTimeString();
}

function messageItem(m) {
  const item = el("li", "message " + (m.direction === "inbound" ? "inbound" : "outbound"));
  item.dataset.id = m.id;
  item.append(el("span", "body", m.text));
  const meta = el("span", "meta");
  meta.append(el("time", "at", shortTime(m.at)), " · ");
  const status = el("span", "status", m.status);
  status.classList.add("status-" + String(m.status).replace(/[^a-z_]/g, ""));
  meta.append(status);
  item.append(meta);
  return item;
}

async function inbound(thread, text, card) {
  const error = card.querySelector(".error");
  error.textContent = "";
  try {
    const r = await fetch("/sim/inbound", {
      method: "POST", headers: {"Content-Type": "application/json"},
      body: JSON.stringify({from: thread.member, to: thread.church_number, text: text})});
    const doc = await r.json();
    if (!r.ok) {
      error.textContent = (doc.errors && doc.errors[0] && doc.errors[0].detail) || r.statusText;
    } else if (!(doc.data.status >= 200 && doc.data.status < 300)) {
      error.textContent = "the service answered the webhook with " + doc.data.status;
    }
  } catch (e) {
    error.textContent = String(e);
  }
  poll();
}

function newCard(thread) {
  const card = document.getElementById("thread-template").content
    .firstElementChild.cloneNode(true);
  card.dataset.member = thread.member;
  card.querySelector(".member").textContent = thread.member;
  const entry = {card: card, thread: thread, seen: ""};
  const input = card.querySelector(".text");
  card.querySelector(".reply").addEventListener("submit", (event) => {
    event.preventDefault();
    const text = input.value;
    if (!text.trim()) return;
    input.value = "";
    inbound(entry.thread, text, card);
  });
  card.querySelector(".stop").addEventListener("click", () => inbound(entry.thread, "STOP", card));
  card.querySelector(".start").addEventListener("click",
    () => inbound(entry.thread, "START", card));
  cards.set(thread.member, entry);
  return entry;
}

function render(threads) {
  document.getElementById("empty").hidden = threads.length > 0;
  // a new number's thread goes first; a thread never moves afterwards (a reply being typed
  // keeps its focus)
  for (const thread of [...threads].reverse()) {
    let entry = cards.get(thread.member);
    if (!entry) {
      entry = newCard(thread);
      document.getElementById("empty").after(entry.card);
    }
    entry.thread = thread;
    entry.card.querySelector(".church").textContent = thread.church_number;
    const seen = JSON.stringify(thread.messages);
    if (seen !== entry.seen) {
      entry.seen = seen;
      const list = entry.card.querySelector(".messages");
      list.replaceChildren(...thread.messages.map(messageItem));
      list.scrollTop = list.scrollHeight;
    }
  }
  for (const [member, entry] of cards) {
    if (!threads.some((t) => t.member === member)) {
      entry.card.remove();
      cards.delete(member);
    }
  }
}

let polling = false;
async function poll() {
  if (polling) return;
  polling = true;
  const status = document.getElementById("status");
  try {
    const r = await fetch("/sim/threads", {cache: "no-store"});
    const body = await r.text();
    if (!r.ok) throw new Error("HTTP " + r.status);
    status.textContent = "live";
    status.className = "";
    if (body !== lastBody) {
      lastBody = body;
      render(JSON.parse(body).data);
    }
  } catch (e) {
    status.textContent = "simulator unreachable, retrying";
    status.className = "down";
  } finally {
    polling = false;
  }
}

document.addEventListener("DOMContentLoaded", () => {
  poll();
  setInterval(poll, POLL_MS);
});
