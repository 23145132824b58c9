// The page that plays the WhatsApp side of the gatekeeper simulator. Plain browser JavaScript,
// no framework and no build step. Everything it shows comes from the simulator's admin API with
// the token from the URL's fragment (#token=...), which the browser never sends anywhere.
// Every piece of text from the API is put on the page with textContent, never parsed as HTML.
/* global window, document, location, navigator, fetch, setTimeout, URL, URLSearchParams,
   FileReader, Image, Audio, File, MediaRecorder, clearTimeout -- a browser script, linted as such */
"use strict";

const POLL_MS = 1000;
const REACTIONS = ["👍", "❤️", "😂", "😮"];

const token = new URLSearchParams(location.hash.slice(1)).get("token") ?? "";

const state = {
  /** The selected simulated user's digits (without +). */
  digits: "",
  me: "",
  /** The open chat's contact JID. */
  chat: "",
  entries: [],
  lastId: 0,
  replyTo: undefined,
  recorder: undefined,
  blobUrls: new Map(),
  polling: false,
};

const $ = (id) => document.getElementById(id);

/** Builds an element; strings among `children` become text nodes (never HTML). */
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === false) continue;
    if (name === "className") node.className = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children) {
    if (child === undefined || child === null) continue;
    node.append(typeof child === "string" ? document.createTextNode(child) : child);
  }
  return node;
}

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function api(method, path, body) {
  const headers = { authorization: `Bearer ${token}` };
  if (body !== undefined) headers["content-type"] = "application/json";
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    cache: "no-store",
  });
  const json = await response.json().catch(() => ({}));
  if (response.status === 401) {
    refuse("The token in this page's address is wrong or missing.");
    throw new ApiError(401, "unauthorized", "wrong token");
  }
  if (!response.ok) {
    throw new ApiError(response.status, json.error ?? "error", json.message ?? response.statusText);
  }
  return json;
}

function refuse(reason) {
  $("app").hidden = true;
  $("refused").hidden = false;
  $("refused-reason").textContent = reason;
  state.polling = false;
}

function status(text, isError = false) {
  const s = $("status");
  s.textContent = text;
  s.className = isError ? "error" : "";
}

/** Runs an action from a button; its failure is shown, never thrown away silently. */
async function act(what, run) {
  try {
    await run();
    status(`${what}: done`);
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return;
    status(`${what} failed: ${err.message}`, true);
  }
}

const enc = encodeURIComponent;
const userPath = () => `/users/${state.digits}`;

// --- users -------------------------------------------------------------------------------------

async function loadUsers(select) {
  const { users } = await api("GET", "/users");
  const list = $("user-select");
  list.replaceChildren(
    el("option", { value: "" }, users.length === 0 ? "(create a user below)" : "(pick a user)"),
    ...users.map((u) => el("option", { value: u.phone.slice(1) }, u.phone)),
  );
  const wanted = select ?? state.digits;
  if (wanted !== "" && users.some((u) => u.phone.slice(1) === wanted)) list.value = wanted;
  else if (state.digits === "" && users.length > 0) list.value = users[0].phone.slice(1);
  if (list.value !== state.digits) await pickUser(list.value);
}

async function pickUser(digits) {
  state.digits = digits;
  state.me = digits === "" ? "" : (await api("GET", `/users/${digits}`)).jid;
  openChat("");
  await refreshChats();
}

// --- chats -------------------------------------------------------------------------------------

async function refreshChats() {
  const list = $("chat-list");
  if (state.digits === "") {
    list.replaceChildren();
    return;
  }
  const { chats } = await api("GET", `${userPath()}/chats`);
  list.replaceChildren(
    ...chats.map((c) =>
      el(
        "li",
        {
          className: c.jid === state.chat ? "open" : "",
          "data-jid": c.jid,
          tabindex: "0",
          onclick: () => openChat(c.jid),
          onkeydown: (e) => e.key === "Enter" && openChat(c.jid),
        },
        c.jid,
        c.state === "pending" ? el("span", { className: "badge request" }, "request") : undefined,
        c.blocked ? el("span", { className: "badge blocked" }, "blocked") : undefined,
        el("span", { className: "badge" }, String(c.messages)),
      ),
    ),
  );
}

function openChat(jid) {
  state.chat = jid;
  state.entries = [];
  state.lastId = 0;
  setReply(undefined);
  $("chat-title").textContent = jid === "" ? "No chat open" : jid;
  $("chat-state").textContent = "";
  for (const id of ["accept", "decline", "mark-read", "block", "unblock"]) $(id).hidden = true;
  $("messages").replaceChildren();
  for (const li of $("chat-list").children) {
    li.className = li.dataset.jid === jid ? "open" : "";
  }
  if (jid !== "") void refreshChat();
}

async function refreshChat() {
  const jid = state.chat;
  if (jid === "" || state.digits === "") return;
  const answer = await api("GET", `${userPath()}/chats/${enc(jid)}?after=${state.lastId}`);
  if (jid !== state.chat) return;
  const pending = answer.state === "pending";
  $("chat-state").textContent = [
    pending ? "message request: accept to reply" : answer.state === "none" ? "new chat" : "",
    answer.state === "declined" ? "request declined" : "",
    answer.blocked ? "blocked" : "",
  ]
    .filter((t) => t !== "")
    .join(" · ");
  $("accept").hidden = !pending;
  $("decline").hidden = !pending;
  $("block").hidden = answer.blocked;
  $("unblock").hidden = !answer.blocked;
  $("mark-read").hidden = lastIncoming() === undefined;
  // Two polls in flight (a timer and a send) may both bring the same new entries: keep one.
  const fresh = answer.entries.filter((entry) => entry.id > state.lastId);
  if (fresh.length === 0) return;
  state.entries.push(...fresh);
  state.lastId = fresh[fresh.length - 1].id;
  $("mark-read").hidden = lastIncoming() === undefined;
  render();
}

/** Content elements of a message entry, by kind. */
function part(entry, kind) {
  return (entry.data.content ?? []).find((c) => c.kind === kind);
}

function authorOf(entry) {
  return entry.kind === "sent" ? state.me : entry.data.from.split("/")[0];
}

function lastIncoming() {
  for (let i = state.entries.length - 1; i >= 0; i--) {
    const e = state.entries[i];
    if (e.kind === "message" && part(e, "reactions") === undefined) return e;
  }
  return undefined;
}

/** Folds edits, retractions, reactions, receipts and markers onto the messages they name. */
function fold(entries) {
  const messages = [];
  const byId = new Map();
  const reactions = new Map();
  const delivered = new Set();
  let readUpTo;
  let typing = false;
  for (const e of entries) {
    if (e.kind === "receipt") for (const r of e.data.refs ?? []) delivered.add(r.id);
    else if (e.kind === "displayed") readUpTo = e.data.ref?.id;
    else if (e.kind === "chat-state") typing = e.data.state === "composing";
    else if (e.kind === "undecryptable" || e.kind === "discarded") {
      messages.push({ system: `a message could not be read (${e.kind}: ${e.data.reason ?? ""})` });
    } else if (e.kind === "message" || e.kind === "sent") {
      if (e.kind === "message") typing = false;
      const author = authorOf(e);
      const reaction = part(e, "reactions");
      const replace = part(e, "replace");
      const retract = part(e, "retract");
      if (reaction !== undefined) {
        const set = reactions.get(reaction.id) ?? new Map();
        set.set(author, reaction.reactions);
        reactions.set(reaction.id, set);
      } else if (replace !== undefined) {
        const target = byId.get(replace.id);
        if (target !== undefined) {
          target.text = part(e, "body")?.text ?? "";
          target.edited = true;
        }
      } else if (retract !== undefined) {
        const target = byId.get(retract.id);
        if (target !== undefined) target.retracted = true;
      } else {
        const m = { entry: e, id: e.data.originId, author, mine: e.kind === "sent" };
        m.text = part(e, "body")?.text ?? describe(e);
        messages.push(m);
        if (m.id !== undefined) byId.set(m.id, m);
      }
    }
  }
  let read = false;
  for (let i = messages.length - 1; i >= 0; i--) {
    const m = messages[i];
    if (m.id !== undefined && m.id === readUpTo) read = true;
    if (m.mine) m.read = read;
  }
  for (const m of messages) {
    if (m.mine) m.delivered = delivered.has(m.id) || m.read;
    m.reactions = reactions.get(m.id);
  }
  return { messages, byId, typing };
}

/** A line for content without a text body. */
function describe(entry) {
  const media = part(entry, "media");
  if (media !== undefined) return "";
  const location = part(entry, "location");
  if (location !== undefined) return `📍 ${location.name ?? ""} ${location.lat}, ${location.lon}`;
  if (part(entry, "contact") !== undefined) return "👤 contact card";
  const call = part(entry, "call");
  if (call !== undefined) return `📞 ${call.media} call: ${call.outcome}`;
  const timer = part(entry, "disappearing");
  if (timer !== undefined) return `⏱ disappearing messages: ${timer.timer} s`;
  return `(${(entry.data.content ?? []).map((c) => c.kind).join(", ")})`;
}

function render() {
  const list = $("messages");
  const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
  const { messages, byId, typing } = fold(state.entries);
  list.replaceChildren(...messages.map((m) => bubble(m, byId)));
  $("typing").hidden = !typing;
  if (atBottom) list.scrollTop = list.scrollHeight;
}

function bubble(m, byId) {
  if (m.system !== undefined) return el("li", { className: "msg system" }, m.system);
  if (m.retracted) {
    return el("li", { className: `msg retracted${m.mine ? " mine" : ""}` }, "message deleted");
  }
  const reply = part(m.entry, "reply");
  const quoted = reply === undefined ? undefined : byId.get(reply.id);
  const media = part(m.entry, "media");
  const time = new Date(m.entry.at).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  const ticks = !m.mine
    ? undefined
    : el("span", { className: `ticks${m.read ? " read" : ""}` }, m.delivered ? " ✓✓" : " ✓");
  const reactions =
    m.reactions === undefined
      ? []
      : [...m.reactions.values()].flat().filter((r) => typeof r === "string");
  return el(
    "li",
    { className: `msg${m.mine ? " mine" : ""}`, "data-id": m.id ?? "" },
    reply === undefined
      ? undefined
      : el("div", { className: "quote" }, quoted?.text ?? reply.quote ?? "(an earlier message)"),
    media === undefined ? undefined : mediaView(m.entry, media.media),
    m.text === "" ? undefined : el("div", { className: "text" }, m.text),
    reactions.length === 0 ? undefined : el("div", { className: "reactions" }, reactions.join(" ")),
    el(
      "div",
      { className: "meta" },
      m.edited ? "edited · " : "",
      time,
      m.entry.kind === "sent" && m.entry.data.delivered === false ? " · not delivered" : "",
      ticks,
    ),
    m.id === undefined
      ? undefined
      : el(
          "div",
          { className: "actions" },
          el("button", { type: "button", onclick: () => setReply(m) }, "Reply"),
          ...REACTIONS.map((r) =>
            el(
              "button",
              {
                type: "button",
                title: `React ${r}`,
                "data-reaction": r,
                onclick: () => react(m, r),
              },
              r,
            ),
          ),
        ),
  );
}

/** Received or sent media: fetched decrypted with the token, shown through a blob: URL. */
function mediaView(entry, media) {
  const label = `${media.voice ? "🎤 voice note" : media.kind}${
    media.filename ? `: ${media.filename}` : ""
  } (${Math.ceil(media.size / 1024)} KB)`;
  const box = el("div", { className: "media" }, label);
  const cached = state.blobUrls.get(entry.id);
  const show = (url) => {
    if (media.kind === "image") box.append(el("img", { src: url, alt: label }));
    else if (media.kind === "audio") box.append(el("audio", { src: url, controls: true }));
    else if (media.kind === "video") box.append(el("video", { src: url, controls: true }));
    else box.append(el("a", { href: url, download: media.filename ?? "file" }, " save"));
  };
  if (cached !== undefined) show(cached);
  else {
    const button = el("button", { type: "button" }, "show");
    button.addEventListener("click", () =>
      act("loading the media", async () => {
        const response = await fetch(`${userPath()}/media/${entry.id}`, {
          headers: { authorization: `Bearer ${token}` },
        });
        if (!response.ok) throw new Error(`the simulator answered ${response.status}`);
        state.blobUrls.set(entry.id, URL.createObjectURL(await response.blob()));
        // Drawn anew from the cache: this bubble may have been replaced by a poll meanwhile.
        render();
      }),
    );
    box.append(" ", button);
  }
  return box;
}

function setReply(m) {
  state.replyTo = m;
  $("reply-bar").hidden = m === undefined;
  $("reply-quote").textContent = m === undefined ? "" : m.text.slice(0, 100);
}

// --- sending -----------------------------------------------------------------------------------

async function send(body) {
  if (state.digits === "" || state.chat === "")
    throw new Error("pick a user and open a chat first");
  const answer = await api("POST", `${userPath()}/send`, { to: state.chat, ...body });
  await refreshChat();
  // Receipts, markers and typing go out only in an accepted, unblocked chat (§10.3, §16.1).
  if (answer.sent === false) throw new Error("not passed on: the chat is not accepted, or blocked");
  return answer;
}

async function sendText() {
  const input = $("composer-text");
  const text = input.value;
  if (text.trim() === "") return;
  const reply = state.replyTo;
  await act("sending", async () => {
    if (reply === undefined) await send({ type: "text", text });
    else {
      await send({
        type: "reply",
        text,
        replyTo: { id: reply.id, author: reply.author },
        quote: reply.text.slice(0, 256),
      });
    }
    input.value = "";
    setReply(undefined);
  });
}

async function react(m, reaction) {
  const mine = m.reactions?.get(state.me) ?? [];
  const next = mine.includes(reaction) ? [] : [reaction];
  await act("reacting", () =>
    send({ type: "reaction", target: { id: m.id, author: m.author }, reactions: next }),
  );
}

function readFile(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(String(reader.result).replace(/^data:[^,]*,/, ""));
    reader.onerror = () => reject(reader.error ?? new Error("could not read the file"));
    reader.readAsDataURL(file);
  });
}

/** Length in whole seconds of an audio file (at least 1), when the browser can read it. */
function audioDuration(url) {
  return new Promise((resolve) => {
    const audio = new Audio();
    const done = (seconds) => resolve(Math.max(1, Math.round(seconds) || 1));
    const timer = setTimeout(() => done(1), 3000);
    audio.onloadedmetadata = () => {
      clearTimeout(timer);
      done(Number.isFinite(audio.duration) ? audio.duration : 1);
    };
    audio.onerror = () => {
      clearTimeout(timer);
      done(1);
    };
    audio.src = url;
  });
}

/** Width and height of an image or video file, when the browser can read them. */
function dimensions(file, url) {
  return new Promise((resolve) => {
    if (file.type.startsWith("image/")) {
      const img = new Image();
      img.onload = () => resolve({ width: img.naturalWidth, height: img.naturalHeight });
      img.onerror = () => resolve({});
      img.src = url;
    } else resolve({});
  });
}

/** `duration`: seconds already known (a recording), else read from the file. */
async function sendFile(file, voice = false, duration = undefined) {
  await act(voice ? "sending the voice note" : "sending the file", async () => {
    const mime = file.type || "application/octet-stream";
    const kind = voice
      ? "audio"
      : mime.startsWith("image/")
        ? "image"
        : mime.startsWith("video/")
          ? "video"
          : mime.startsWith("audio/")
            ? "audio"
            : "document";
    const url = URL.createObjectURL(file);
    const size = await dimensions(file, url);
    const seconds = kind === "audio" ? (duration ?? (await audioDuration(url))) : undefined;
    URL.revokeObjectURL(url);
    const caption = $("composer-text").value;
    await send({
      type: "media",
      kind,
      data: await readFile(file),
      mime,
      filename: file.name || undefined,
      ...size,
      ...(seconds === undefined ? {} : { duration: seconds }),
      ...(voice ? { voice: true } : {}),
      ...(caption.trim() === "" ? {} : { caption }),
    });
    $("composer-text").value = "";
  });
}

/** Records a voice note with the microphone; without one, picks an audio file instead. */
async function toggleVoice() {
  const button = $("voice");
  if (state.recorder !== undefined) {
    state.recorder.stop();
    return;
  }
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ audio: true });
  } catch {
    $("voice-file").click();
    return;
  }
  const chunks = [];
  const recorder = new MediaRecorder(stream);
  const started = Date.now();
  recorder.ondataavailable = (e) => chunks.push(e.data);
  recorder.onstop = () => {
    state.recorder = undefined;
    button.classList.remove("recording");
    for (const track of stream.getTracks()) track.stop();
    const type = (recorder.mimeType || "audio/webm").split(";")[0];
    const file = new File(chunks, "voice-note", { type });
    void sendFile(file, true, Math.max(1, Math.round((Date.now() - started) / 1000)));
  };
  state.recorder = recorder;
  button.classList.add("recording");
  recorder.start();
  status("recording… click Voice note again to send");
}

// --- verification codes and start-up -----------------------------------------------------------

async function refreshCodes() {
  const { codes } = await api("GET", "/verification-codes");
  $("codes").replaceChildren(
    ...(codes.length === 0
      ? [el("li", { className: "hint" }, "no login waiting for a code")]
      : codes.map((c) =>
          el("li", { "data-phone": c.phone }, c.phone, el("span", { className: "code" }, c.code)),
        )),
  );
}

async function refreshBindings() {
  const { bindings } = await api("GET", "/bindings");
  $("bindings").replaceChildren(
    ...bindings.map((b) => el("option", { value: b.jid }, `${b.phone} (bridge user)`)),
  );
}

async function poll() {
  if (!state.polling) return;
  try {
    await Promise.all([refreshChats(), refreshChat(), refreshCodes(), refreshBindings()]);
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 401))
      status(`update failed: ${err.message}`, true);
  }
  if (state.polling) setTimeout(poll, POLL_MS);
}

function wire() {
  $("user-select").addEventListener("change", (e) =>
    act("switching user", () => pickUser(e.target.value)),
  );
  $("create-user-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const phone = $("new-phone").value.trim();
    void act(`creating ${phone}`, async () => {
      await api("POST", "/users", { phone });
      $("new-phone").value = "";
      await loadUsers(phone.slice(1));
    });
  });
  $("new-chat-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const jid = $("new-chat-jid").value.trim();
    if (jid !== "") openChat(jid);
  });
  $("composer").addEventListener("submit", (e) => {
    e.preventDefault();
    void sendText();
  });
  $("reply-cancel").addEventListener("click", () => setReply(undefined));
  $("attach").addEventListener("change", (e) => {
    const file = e.target.files?.[0];
    e.target.value = "";
    if (file !== undefined) void sendFile(file);
  });
  $("voice-file").addEventListener("change", (e) => {
    const file = e.target.files?.[0];
    e.target.value = "";
    if (file !== undefined) void sendFile(file, true);
  });
  $("voice").addEventListener("click", () => void toggleVoice());
  const requestAction = (verb) => () =>
    act(`${verb} the request`, async () => {
      await api("POST", `${userPath()}/requests/${enc(state.chat)}/${verb}`);
      await refreshChat();
    });
  $("accept").addEventListener("click", requestAction("accept"));
  $("decline").addEventListener("click", requestAction("decline"));
  $("block").addEventListener("click", () =>
    act("blocking", async () => {
      await api("POST", `${userPath()}/blocks`, { jid: state.chat });
      await refreshChat();
    }),
  );
  $("unblock").addEventListener("click", () =>
    act("unblocking", async () => {
      await api("DELETE", `${userPath()}/blocks/${enc(state.chat)}`);
      await refreshChat();
    }),
  );
  $("mark-read").addEventListener("click", () => {
    const last = lastIncoming();
    if (last === undefined) return;
    void act("marking read", () =>
      send({ type: "displayed", ref: { id: last.data.originId, author: authorOf(last) } }),
    );
  });
}

async function start() {
  if (token === "") {
    refuse("This address has no token.");
    return;
  }
  try {
    await api("GET", "/users");
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 401)) refuse(`The simulator: ${err.message}`);
    return;
  }
  $("app").hidden = false;
  wire();
  await loadUsers();
  state.polling = true;
  void poll();
}

// A new token pasted into the address bar changes only the fragment: start again with it.
window.addEventListener("hashchange", () => location.reload());
void start();
