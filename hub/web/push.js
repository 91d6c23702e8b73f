// Web Push for a page under the hub (the responder's phone page imports it): register this browser's
// push subscription with the hub, or drop it. The hub sends with VAPID (hub/notify); the service worker
// (push-sw.js) shows the notice while no page of the hub is open.
// Chrome's push goes through Google's FCM, unreachable in mainland China: there the robots and SMS are the
// primary path (docs/notify.md) and this is a bonus where it works.
export const PUSH_TEXT = {
  zh: {unsupported: "此浏览器不支持推送通知", denied: "通知权限被拒绝：请在浏览器设置中允许",
       off: "本中心未启用网页推送", on: "已开启推送通知", removed: "已关闭推送通知", failed: "开启推送失败",
       no_service: "此浏览器的推送服务不可用（Chrome 经由谷歌 FCM，境内无法连接）：中心将通过短信或企业微信/钉钉通知您"},
  en: {unsupported: "This browser cannot receive push notifications", denied: "Notifications are blocked: allow them in the browser's settings",
       off: "Web Push is not enabled on this hub", on: "Push notifications on", removed: "Push notifications off",
       failed: "Could not turn on push notifications",
       no_service: "This browser's push service is unreachable (Chrome's goes through Google's FCM, blocked in mainland China): the centre will reach you by SMS or the WeCom/DingTalk group"},
};

function keyBytes(b64url) {
  const b64 = b64url.replace(/-/g, "+").replace(/_/g, "/") + "=".repeat((4 - (b64url.length % 4)) % 4);
  return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
}

async function registration() {
  const reg = await navigator.serviceWorker.register("/static/push-sw.js", {scope: "/static/"});
  // subscribe() needs an active worker; `ready` would wait for one controlling *this* page, which a
  // worker scoped to /static/ never does
  for (let i = 0; !reg.active && i < 100; i++) await new Promise((r) => setTimeout(r, 100));
  return reg;
}

// Returns {ok, reason} with reason one of PUSH_TEXT's keys.
export async function enablePush() {
  if (!("serviceWorker" in navigator) || !("PushManager" in window)) return {ok: false, reason: "unsupported"};
  const key = await fetch("/api/notify/webpush/key", {credentials: "same-origin"}).then((r) => r.json());
  if (!key.available) return {ok: false, reason: "off"};
  if ((await Notification.requestPermission()) !== "granted") return {ok: false, reason: "denied"};
  const reg = await registration();
  let sub = await reg.pushManager.getSubscription();
  if (!sub) {
    try {  // the browser asks its vendor's push service; where that is unreachable it refuses or never answers
      sub = await Promise.race([
        reg.pushManager.subscribe({userVisibleOnly: true, applicationServerKey: keyBytes(key.public_key)}),
        new Promise((_, no) => setTimeout(() => no(new Error("no answer from the push service")), 20000))]);
    } catch (e) {
      return {ok: false, reason: "no_service", error: String(e && e.message || e)};
    }
  }
  const r = await fetch("/api/notify/webpush/subscriptions", {method: "POST", credentials: "same-origin",
    headers: {"Content-Type": "application/json"}, body: JSON.stringify(sub.toJSON())});
  return r.ok ? {ok: true, reason: "on"} : {ok: false, reason: "failed"};
}

export async function disablePush() {
  if (!("serviceWorker" in navigator)) return {ok: false, reason: "unsupported"};
  const reg = await navigator.serviceWorker.getRegistration("/static/");
  const sub = reg && (await reg.pushManager.getSubscription());
  if (sub) {
    await fetch("/api/notify/webpush/subscriptions", {method: "DELETE", credentials: "same-origin",
      headers: {"Content-Type": "application/json"}, body: JSON.stringify({endpoint: sub.endpoint})});
    await sub.unsubscribe();
  }
  return {ok: true, reason: "removed"};
}
