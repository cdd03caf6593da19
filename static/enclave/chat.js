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

// The new chat's collection picker (templates/assistant/_scope.html): its boxes belong to this
// form, and are sent even once the picker is locked.
function scopePicked(form) {
  return [...form.elements].filter((box) => box.name === "scope" && box.checked)
    .map((box) => ["scope", box.value]);
}

// The new chat's model picker (templates/assistant/_model.html) belongs to this form too; it is
// locked once the conversation exists, which keeps its pick (changed on its own page).
function modelPicked(form) {
  return [...form.elements].filter((field) => field.name === "model" && !field.disabled)
    .map((field) => ["model", field.value]);
}

// `again`: {url, question} to regenerate or edit the last exchange, which it replaces.
async function ask(form, again) {
  const field = form.querySelector("textarea[name=question]");
  const button = form.querySelector("button");
  const question = again ? again.question : field.value.trim();
  if (!question || answering) return;
  const empty = document.querySelector("#messages .empty");
  if (empty) empty.remove();
  if (again) removeLastExchange();
  const asked = bubble("user", question);
  const answer = bubble("assistant", "");
  const target = answer.querySelector(".answer");
  if (!again) field.value = "";
  button.disabled = true;
  answering = { stopUrl: null, wanted: false, controller: new AbortController() };
  showAnswering(true);
  let conversationUrl = null;
  try {
    const response = await fetch(again ? again.url : form.action, {
      signal: answering.controller.signal,
      method: "POST",
      body: new URLSearchParams([
        ["question", question],
        ["csrfmiddlewaretoken", form.querySelector("[name=csrfmiddlewaretoken]").value],
        ...scopePicked(form),
        ...(again ? [] : modelPicked(form)),
      ]),
      headers: { "Accept": "text/event-stream" },
      credentials: "same-origin",
    });
    if (!response.ok) {
      // 400: the question is refused (too long); 401: the session ended; 429: too many questions.
      target.textContent = [400, 401, 429].includes(response.status) ? await response.text()
        : interpolate(gettext("The question could not be sent (HTTP %(status)s)."),
          { status: response.status }, true);
      answer.classList.add("failed");
      setStatus(target.textContent);
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
          conversationUrl = event.data.url;
          form.action = event.data.url + "ask/";
          [...form.elements].filter((field) => field.name === "model")
            .forEach((field) => { field.disabled = true; });
          if (location.pathname !== event.data.url) {
            history.replaceState(null, "", event.data.url);
            listConversation(event.data.url, event.data.title);
          }
        } else if (event.name === "status") {
          setStatus(event.data.text);
        } else if (event.name === "record") {
          answering.stopUrl = event.data.stop_url;
          if (answering.wanted) postAction(answering.stopUrl);
        } else if (event.name === "token") {
          target.appendChild(document.createTextNode(event.data.text));
        } else if (event.name === "error") {
          setStatus(event.data.message);
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
          setStatus(event.data.outcome === "stopped" ? gettext("Stopped.") : gettext("Answer ready."));
        }
      }
    }
  } catch (error) {
    target.textContent = answering.wanted ? gettext("Stopped.")
      : gettext("The connection was lost before the answer finished.");
    answer.classList.add("failed");
    setStatus(target.textContent);
  } finally {
    if (conversationUrl) asked.appendChild(editAction(conversationUrl + "edit/"));
    answering = null;
    showAnswering(false);
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

// --- the answer's lifecycle: status, stop (button and Esc), regenerate, edit, copy ---------

let answering = null; // {stopUrl, wanted, controller} while an answer streams

// One polite live region, changed per phase, never per token.
function setStatus(text) {
  const status = document.getElementById("answer-status");
  if (status) status.textContent = text;
}

function csrfToken() {
  return document.querySelector("#ask [name=csrfmiddlewaretoken]").value;
}

function postAction(url) {
  return fetch(url, {
    method: "POST", headers: { "X-CSRFToken": csrfToken() }, credentials: "same-origin",
  });
}

function showAnswering(on) {
  const stop = document.getElementById("stop");
  if (stop) stop.hidden = !on;
  refreshActions();
}

// The server ends generation; the stream then ends with the partial answer. If it does not
// (the model has not sent a token yet), the browser gives up waiting after a while.
function stopAnswer() {
  const current = answering;
  if (!current || current.wanted) return;
  current.wanted = true;
  setStatus(gettext("Stopping…"));
  if (current.stopUrl) postAction(current.stopUrl);
  setTimeout(() => current.controller.abort(), 10000);
}

// Edit and Regenerate act on the last exchange only, and not while an answer streams.
function refreshActions() {
  const messages = document.getElementById("messages");
  if (!messages) return;
  const users = messages.querySelectorAll("article.msg.user");
  const lastUser = users[users.length - 1];
  const last = messages.lastElementChild;
  messages.querySelectorAll("[data-last-only]").forEach((action) => {
    const article = action.closest("article");
    action.hidden = answering !== null || (article !== lastUser && article !== last);
  });
}

function removeLastExchange() {
  const users = document.querySelectorAll("#messages article.msg.user");
  let node = users[users.length - 1];
  while (node) {
    const next = node.nextElementSibling;
    node.remove();
    node = next;
  }
}

function editAction(url) {
  const actions = document.createElement("div");
  actions.className = "msg-actions";
  const button = document.createElement("button");
  button.type = "button";
  button.className = "edit-question";
  button.dataset.url = url;
  button.dataset.lastOnly = "";
  button.textContent = gettext("Edit");
  actions.appendChild(button);
  return actions;
}

function openEditor(button) {
  const article = button.closest("article");
  const text = article.querySelector("p");
  const actions = button.closest(".msg-actions");
  const editor = document.createElement("form");
  editor.className = "edit-question-form";
  const area = document.createElement("textarea");
  area.value = text.textContent;
  area.rows = 2;
  area.maxLength = 4000;
  area.setAttribute("aria-label", gettext("Edit your question"));
  const send = document.createElement("button");
  send.type = "submit";
  send.textContent = gettext("Send");
  const cancel = document.createElement("button");
  cancel.type = "button";
  cancel.textContent = gettext("Cancel");
  editor.append(area, send, cancel);
  text.hidden = true;
  actions.hidden = true;
  text.after(editor);
  area.focus();
  const close = () => {
    editor.remove();
    text.hidden = false;
    actions.hidden = false;
    button.focus();
  };
  cancel.addEventListener("click", close);
  area.addEventListener("keydown", (event) => {
    if (event.key === "Escape") close();
    if (event.key === "Enter" && !event.shiftKey) {
      event.preventDefault();
      editor.requestSubmit();
    }
  });
  editor.addEventListener("submit", (event) => {
    event.preventDefault();
    const question = area.value.trim();
    if (question) ask(document.getElementById("ask"), { url: button.dataset.url, question });
  });
}

// The answer as text, then its sources, as a reader would cite them.
function answerText(article) {
  const lines = [article.querySelector(".answer").innerText.trim()];
  const sources = [...article.querySelectorAll("ol.sources li")]
    .filter((li) => li.querySelector(".source-link"));
  if (sources.length) lines.push("", gettext("Sources:"));
  for (const li of sources) {
    const page = li.querySelector(".file-link").getAttribute("href").split("#page=")[1];
    const title = li.querySelector(".source-link").textContent;
    lines.push(interpolate(gettext("[%(n)s] %(title)s, page %(page)s"),
      { n: li.value, title, page }, true));
  }
  return lines.join("\n");
}

async function copyAnswer(button) {
  try {
    await navigator.clipboard.writeText(answerText(button.closest("article")));
  } catch (error) {
    setStatus(gettext("The answer could not be copied: the browser refused the clipboard."));
    return;
  }
  postAction(button.dataset.url); // the copy leaves the app: it is audited
  setStatus(gettext("Answer copied with its sources."));
}

document.addEventListener("click", (event) => {
  const form = document.getElementById("ask");
  const action = event.target.closest("#stop, .regenerate, .edit-question, .copy-answer");
  if (!form || !action) return;
  if (action.id === "stop") stopAnswer();
  else if (action.classList.contains("copy-answer")) copyAnswer(action);
  else if (action.classList.contains("edit-question")) openEditor(action);
  else {
    const users = document.querySelectorAll("#messages article.msg.user > p");
    const question = users[users.length - 1].textContent;
    ask(form, { url: action.dataset.url, question });
  }
});

document.addEventListener("keydown", (event) => {
  // Esc stops the answer, unless it is closing a dialog (the citation panel) first.
  if (event.key !== "Escape" || !answering || document.querySelector("dialog[open]")) return;
  event.preventDefault();
  stopAnswer();
});

document.addEventListener("DOMContentLoaded", refreshActions);
