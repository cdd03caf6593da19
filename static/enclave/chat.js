// Streams an answer: POST the question, read server-sent events from the response body,
// append tokens as plain text, then swap in the server-rendered (sanitised) answer.
"use strict";

function parseEvents(buffer) {
  const events = [];
  let boundary;
  while ((boundary = buffer.indexOf("\n\n")) !== -1) {
    const frame = buffer.slice(0, boundary);
    buffer = buffer.slice(boundary + 2);
    let name = "message";
    let data = "";
    for (const line of frame.split("\n")) {
      if (line.startsWith("event: ")) name = line.slice(7);
      else if (line.startsWith("data: ")) data += line.slice(6);
    }
    events.push({ name, data: data ? JSON.parse(data) : {} });
  }
  return { events, rest: buffer };
}

function bubble(role, text) {
  const article = document.createElement("article");
  article.className = "msg " + role;
  const p = document.createElement(role === "user" ? "p" : "div");
  p.className = role === "user" ? "" : "answer streaming";
  p.textContent = text;
  article.appendChild(p);
  document.getElementById("messages").appendChild(article);
  return article;
}

function listConversation(url, title) {
  const list = document.getElementById("conversations");
  if (!list) return;
  list.querySelectorAll("li").forEach((li) => {
    li.classList.remove("current");
    if (li.classList.contains("muted")) li.remove();
  });
  const item = document.createElement("li");
  item.className = "current";
  const link = document.createElement("a");
  link.href = url;
  link.textContent = title;
  item.appendChild(link);
  list.prepend(item);
}

async function ask(form) {
  const field = form.querySelector("textarea[name=question]");
  const button = form.querySelector("button");
  const question = field.value.trim();
  if (!question) return;
  const empty = document.querySelector("#messages .empty");
  if (empty) empty.remove();
  bubble("user", question);
  const answer = bubble("assistant", "");
  const target = answer.querySelector(".answer");
  field.value = "";
  button.disabled = true;
  try {
    const response = await fetch(form.action, {
      method: "POST",
      body: new URLSearchParams({
        question, csrfmiddlewaretoken: form.querySelector("[name=csrfmiddlewaretoken]").value,
      }),
      headers: { "Accept": "text/event-stream" },
      credentials: "same-origin",
    });
    if (!response.ok) {
      // 401: the session ended (idle or too old); 429: too many questions.
      target.textContent = [401, 429].includes(response.status) ? await response.text()
        : "The question could not be sent (HTTP " + response.status + ").";
      answer.classList.add("failed");
      return;
    }
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      const parsed = parseEvents(buffer + decoder.decode(value, { stream: true }));
      buffer = parsed.rest;
      for (const event of parsed.events) {
        if (event.name === "conversation") {
          form.action = event.data.url + "ask/";
          if (location.pathname !== event.data.url) {
            history.replaceState(null, "", event.data.url);
            listConversation(event.data.url, event.data.title);
          }
        } else if (event.name === "token") {
          target.appendChild(document.createTextNode(event.data.text));
        } else if (event.name === "error") {
          const note = document.createElement("p");
          note.className = "error";
          note.textContent = event.data.message;
          answer.appendChild(note);
          answer.classList.add("failed");
        } else if (event.name === "done") {
          // Server-rendered and sanitised; replaces the plain-text preview.
          const holder = document.createElement("div");
          holder.innerHTML = event.data.html;
          answer.replaceWith(holder.firstElementChild);
        }
      }
    }
  } catch (error) {
    target.textContent = "The connection was lost before the answer finished.";
    answer.classList.add("failed");
  } finally {
    button.disabled = false;
    field.focus();
  }
}

document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("ask");
  if (!form) return;
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    ask(form);
  });
  form.querySelector("textarea").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey) {
      event.preventDefault();
      ask(form);
    }
  });
});

// A citation marker opens its source's passage as well as scrolling to it.
document.addEventListener("click", (event) => {
  const link = event.target.closest("a.cite");
  if (!link) return;
  const source = document.getElementById(link.getAttribute("href").slice(1));
  const details = source && source.querySelector("details");
  if (details) details.open = true;
});
