// The patrol check-in page a pole's QR sticker opens (hub/patrols): the token is in the URL's fragment
// (#t=...), which no browser sends to a server; the page posts it with the phone's position, if given.
import {detailText} from "./server-errors.js";

const T = {
  zh: {title: "巡逻签到", locating: "正在获取位置…", sending: "正在签到…", ok: "已签到", login: "请先登录",
       user: "用户名", pass: "密码", go: "登录并签到", again: "重试", badLogin: "用户名或密码错误",
       noToken: "这个链接没有签到码：请扫描立杆上的二维码", noPos: "未取得位置（仍已签到）",
       far: "距立杆 {d} 米：请在立杆旁扫码", dist: "距立杆 {d} 米", grid: "网格", lang: "English",
       net: "网络错误，请重试", refused: "签到被拒绝", when: "时间"},
  en: {title: "Patrol check-in", locating: "Getting your position…", sending: "Checking in…", ok: "Checked in",
       login: "Please log in first", user: "Username", pass: "Password", go: "Log in and check in", again: "Try again",
       badLogin: "Wrong username or password", noToken: "This link has no check-in code: scan the sticker on the pole",
       noPos: "No position (checked in anyway)", far: "{d} m from the pole: scan it standing next to it",
       dist: "{d} m from the pole", grid: "Grid", lang: "中文", net: "Network error, try again",
       refused: "Check-in refused", when: "Time"},
};
// Chinese by default; English where the phone asks for it; the reader's choice is kept
let lang = localStorage.getItem("pingan.lang") || ((navigator.language || "zh").startsWith("en") ? "en" : "zh");
const $ = (id) => document.getElementById(id);
const t = (k, vars = {}) => T[lang][k].replace(/\{(\w+)\}/g, (_, v) => vars[v]);
const token = new URLSearchParams(location.hash.slice(1)).get("t");

function say(text, kind = "") {
  $("status").textContent = text;
  $("status").className = kind;
}

function labels() {
  document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
  document.title = t("title");
  $("title").textContent = t("title");
  $("l-user").textContent = t("user");
  $("l-pass").textContent = t("pass");
  $("l-go").textContent = t("go");
  $("again").textContent = t("again");
  $("lang").textContent = t("lang");
}

function position() {
  return new Promise((resolve) => {
    if (!navigator.geolocation) return resolve(null);
    navigator.geolocation.getCurrentPosition(
      (p) => resolve({lat: p.coords.latitude, lon: p.coords.longitude, accuracy_m: p.coords.accuracy}),
      () => resolve(null), {enableHighAccuracy: true, timeout: 8000, maximumAge: 30000});
  });
}

function refusal(detail) {
  return `${t("refused")}: ${detailText(detail, lang)}`;
}

async function checkIn() {
  $("again").hidden = true;
  $("result").hidden = true;
  if (!token) return say(t("noToken"), "bad");
  say(t("locating"));
  const pos = await position();
  say(t("sending"));
  let r;
  try {
    r = await fetch("/api/patrols/checkins", {method: "POST", credentials: "same-origin",
      headers: {"Content-Type": "application/json"}, body: JSON.stringify({token, ...(pos || {})})});
  } catch (e) {
    $("again").hidden = false;
    return say(t("net"), "bad");
  }
  const body = await r.json().catch(() => ({}));
  if (r.status === 401) {
    $("login").hidden = false;
    return say(t("login"), "warn");
  }
  if (!r.ok) {
    return say(refusal(body.detail), "bad");
  }
  $("login").hidden = true;
  say(t("ok"), "ok");
  $("pole").textContent = body.node;
  $("place").textContent = `${body.place || ""}${body.grid ? ` · ${t("grid")} ${body.grid}` : ""}`;
  $("when").textContent = `${t("when")}: ${new Date(body.at).toLocaleString(lang === "zh" ? "zh-CN" : "en-GB")}`;
  const d = body.distance_m;
  $("distance").textContent = pos === null ? t("noPos") : d === null ? "" : t(body.far ? "far" : "dist", {d: Math.round(d)});
  $("distance").className = body.far ? "far" : "";
  $("result").hidden = false;
}

$("login").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const f = new FormData(ev.target);
  const r = await fetch("/api/login", {method: "POST", credentials: "same-origin",
    headers: {"Content-Type": "application/json"},
    body: JSON.stringify({username: f.get("username"), password: f.get("password")})}).catch(() => null);
  if (!r || !r.ok) return say(r ? t("badLogin") : t("net"), "bad");
  checkIn();
});
$("again").addEventListener("click", checkIn);
$("lang").addEventListener("click", () => {
  lang = lang === "zh" ? "en" : "zh";
  localStorage.setItem("pingan.lang", lang);
  labels();
});
labels();
checkIn();
