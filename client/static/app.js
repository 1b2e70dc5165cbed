// The Chorus page: sign in, the team with live presence, and one click to talk.

import { api, ApiError, commands, forgetSession, loadSession, newId, queries, saveSession, whenUnauthorized } from "./api.js";
import { CallPanel } from "./call.js";
import { LiveStream } from "./live.js";

const HEARTBEAT_MS = 10000; // well inside the default 30 s presence TTL
const $ = (id) => document.getElementById(id);

const state = {
  session: loadSession(),
  teamId: null,
  members: new Map(), // user_id -> {display_name, role}
  presence: new Map(), // user_id -> presence member
  calls: new Map(), // call_id -> call
  live: null,
  heartbeat: null,
  applied: [], // SSE ids applied, in order (the end-to-end test checks none is repeated)
};
const deviceId = localStorage.getItem("chorus.device") || newId();
localStorage.setItem("chorus.device", deviceId);

export function showMessage(text) {
  $("message").textContent = text || "";
  $("message").hidden = !text;
}

function explain(error) {
  if (!(error instanceof ApiError)) return String(error);
  if (error.code === "bad_credentials") return "Wrong e-mail or password.";
  if (error.status === 429) return "Too many attempts: wait a minute, then try again.";
  if (error.code === "email_taken") return "An account with this e-mail exists already: sign in instead.";
  if (error.status === 503) return "Chorus is not reachable just now; try again in a moment.";
  return error.message;
}

async function attempt(button, action) {
  if (button) button.disabled = true;
  try {
    showMessage("");
    await action();
  } catch (error) {
    showMessage(explain(error));
  } finally {
    if (button) button.disabled = false;
  }
}

const call = new CallPanel(state, { showMessage, explain, teamMember: (id) => state.members.get(id) });

// ---- signing in and out ------------------------------------------------------------------

async function signIn(email, password) {
  const session = await api("POST", commands("/v1/sessions"), { email, password });
  state.session = { token: session.token, user_id: session.user_id, email };
  saveSession(state.session);
  render();
  const teamId = teamFromLocation();
  if (teamId) await openTeam(teamId);
}

function signOut(message) {
  stopTeam();
  forgetSession();
  state.session = null;
  render();
  showMessage(message || "");
}
whenUnauthorized(() => signOut("Your session has expired: please sign in again."));

$("auth-form").addEventListener("submit", (event) => {
  event.preventDefault();
  attempt($("sign-in"), () => signIn($("email").value, $("password").value));
});
$("sign-up").addEventListener("click", () => {
  if (!$("auth-form").reportValidity()) return;
  attempt($("sign-up"), async () => {
    const email = $("email").value;
    const password = $("password").value;
    const name = $("display-name").value || email.split("@")[0];
    await api("POST", commands("/v1/accounts"), { email, password, display_name: name });
    await signIn(email, password);
  });
});
$("sign-out").addEventListener("click", () => signOut());

// ---- the team ----------------------------------------------------------------------------

function teamFromLocation() {
  const match = location.hash.match(/team=([0-9a-fA-F-]{36})/);
  return match ? match[1] : null;
}

async function openTeam(teamId) {
  stopTeam();
  const listed = await api("GET", commands(`/v1/teams/${teamId}/members`));
  state.teamId = teamId;
  localStorage.setItem("chorus.team", teamId);
  if (location.hash !== `#team=${teamId}`) history.replaceState(null, "", `#team=${teamId}`);
  setMembers(listed.members);
  render();
  await sendPresence();
  state.heartbeat = setInterval(() => {
    api("POST", commands(`/v1/teams/${teamId}/presence/heartbeat`), { device_id: deviceId }).catch(() => {});
  }, HEARTBEAT_MS);
  state.live = new LiveStream(`/api/queries/v1/teams/${teamId}/live`, state.session.token, {
    onSnapshot: applySnapshot,
    onChange: applyChange,
    onState: showConnection,
    onUnauthorized: (status) => (status === 401 ? signOut("Your session has expired: please sign in again.") : showMessage("You are not a member of this team.")),
  });
  state.live.start();
}

function stopTeam() {
  if (state.live) state.live.stop();
  clearInterval(state.heartbeat);
  call.leaveLocally();
  Object.assign(state, { live: null, heartbeat: null, teamId: null });
  state.members.clear();
  state.presence.clear();
  state.calls.clear();
  $("roster").replaceChildren();
  showConnection("");
}

function setMembers(members) {
  for (const member of members) state.members.set(member.user_id, member);
}

async function refreshMembers() {
  if (!state.teamId) return;
  const listed = await api("GET", commands(`/v1/teams/${state.teamId}/members`));
  setMembers(listed.members);
  renderRoster();
}

function sendPresence() {
  return api("POST", commands(`/v1/teams/${state.teamId}/presence`), { status: $("status").value, device_id: deviceId });
}

function showConnection(liveState) {
  const label = { connecting: "Connecting…", live: "Live", reconnecting: "Connection lost: reconnecting…" }[liveState] || "";
  $("connection").textContent = label;
  $("connection").dataset.state = liveState;
}

function applySnapshot(snapshot, id) {
  state.presence.clear();
  for (const member of snapshot.presence.members) state.presence.set(member.user_id, member);
  state.calls.clear();
  for (const c of snapshot.calls) state.calls.set(c.call_id, c);
  state.applied.push(`snapshot:${id}`);
  renderRoster();
  call.update();
}

function applyChange(type, data, id) {
  state.applied.push(id);
  if (type === "presence") {
    state.presence.set(data.user_id, data);
    if (!state.members.has(data.user_id)) refreshMembers().catch(() => {});
    renderRoster();
  } else if (type === "call") {
    state.calls.set(data.call_id, data);
    call.update();
    renderRoster();
  } else if (type === "speaking") {
    const known = state.calls.get(data.call_id);
    const who = known && known.participants.find((p) => p.user_id === data.user_id);
    if (who) who.speaking = data.speaking;
    call.update();
  }
}

$("create-team").addEventListener("submit", (event) => {
  event.preventDefault();
  attempt(event.submitter, async () => {
    const created = await api("POST", commands("/v1/teams"), { name: $("team-name").value });
    await openTeam(created.team_id);
  });
});
$("open-team").addEventListener("submit", (event) => {
  event.preventDefault();
  const match = $("team-ref").value.match(/[0-9a-fA-F-]{36}/);
  if (!match) return showMessage("That is not a team link or id.");
  attempt(event.submitter, () => openTeam(match[0]));
});
$("add-member").addEventListener("submit", (event) => {
  event.preventDefault();
  attempt(event.submitter, async () => {
    try {
      await api("POST", commands(`/v1/teams/${state.teamId}/members`), { email: $("member-email").value });
    } catch (error) {
      if (error.status === 404) throw new Error("No account has this e-mail: ask them to create one first.");
      if (error.status === 403) throw new Error("Only the team's owner adds members.");
      throw error;
    }
    $("member-email").value = "";
    await refreshMembers();
  });
});
$("status").addEventListener("change", () => attempt($("status"), sendPresence));
$("copy-link").addEventListener("click", () => {
  const link = `${location.origin}${location.pathname}#team=${state.teamId}`;
  navigator.clipboard.writeText(link).then(
    () => showMessage(""),
    () => showMessage(`Team link: ${link}`),
  );
});
$("leave-team").addEventListener("click", () => {
  stopTeam();
  localStorage.removeItem("chorus.team");
  history.replaceState(null, "", location.pathname);
  render();
});

// ---- rendering ---------------------------------------------------------------------------

function statusOf(userId) {
  const member = state.presence.get(userId);
  return member ? member.status : "offline";
}

function rowFor(userId) {
  let row = document.querySelector(`#roster li[data-user="${userId}"]`);
  if (row) return row;
  row = document.createElement("li");
  row.dataset.user = userId;
  const dot = document.createElement("span");
  dot.className = "dot";
  dot.setAttribute("role", "img");
  const name = document.createElement("span");
  name.className = "name";
  const text = document.createElement("span");
  text.className = "status-text";
  row.append(dot, name, text);
  if (userId !== state.session.user_id) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "call-button";
    button.addEventListener("click", () => call.start(userId, button));
    row.append(button);
  }
  $("roster").append(row);
  return row;
}

function renderRoster() {
  const mine = state.session && state.session.user_id;
  for (const [userId, member] of state.members) {
    const row = rowFor(userId);
    const status = statusOf(userId);
    const name = member.display_name + (userId === mine ? " (you)" : "");
    row.dataset.status = status;
    row.querySelector(".dot").dataset.status = status;
    row.querySelector(".dot").setAttribute("aria-label", status);
    row.querySelector(".name").textContent = name;
    row.querySelector(".status-text").textContent = status;
    const button = row.querySelector("button");
    if (button) {
      button.textContent = `Talk to ${member.display_name}`;
      button.disabled = call.busy();
    }
  }
}

function render() {
  const signedIn = Boolean(state.session);
  $("auth").hidden = signedIn;
  $("sign-out").hidden = !signedIn;
  $("whoami").textContent = signedIn ? state.session.email : "";
  $("teams").hidden = !signedIn || Boolean(state.teamId);
  $("team").hidden = !signedIn || !state.teamId;
  if (state.teamId) {
    const me = state.members.get(state.session.user_id);
    $("team-title").textContent = "Team";
    $("add-member").hidden = !me || me.role !== "owner";
  }
  renderRoster();
}
call.onChange = renderRoster;

// ---- start -------------------------------------------------------------------------------

// For the end-to-end test and for debugging from the console.
window.chorus = { state, call, dropLive: () => state.live && state.live.drop() };

render();
window.addEventListener("hashchange", () => {
  const teamId = teamFromLocation();
  if (state.session && teamId && teamId !== state.teamId) attempt(null, () => openTeam(teamId));
});
if (state.session) {
  const teamId = teamFromLocation() || localStorage.getItem("chorus.team");
  if (teamId) attempt(null, () => openTeam(teamId));
}
