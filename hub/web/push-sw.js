// The service worker behind hub/web/push.js: shows a pushed notice (hub/notify's Web Push payload:
// title, body, url, alarm, tag) and opens its task when tapped. Text comes from the hub in both languages.
self.addEventListener("push", (event) => {
  let data = {};
  try {
    data = event.data ? event.data.json() : {};
  } catch (e) {
    data = {title: "平安 Pingan", body: event.data ? event.data.text() : ""};
  }
  event.waitUntil(self.registration.showNotification(data.title || "平安 Pingan", {
    body: data.body || "", tag: data.tag || "pingan", renotify: true, requireInteraction: true,
    vibrate: [300, 100, 300, 100, 300], data: {url: data.url || "/"},
  }));
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const url = (event.notification.data && event.notification.data.url) || "/";
  event.waitUntil(self.clients.matchAll({type: "window", includeUncontrolled: true}).then((list) => {
    const open = list.find((c) => c.url === url);
    return open ? open.focus() : self.clients.openWindow(url);
  }));
});
