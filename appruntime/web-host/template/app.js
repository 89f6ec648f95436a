// A tap counter that keeps its count across launches (localStorage lives in the app's own data
// dir), saves when the system sends it to the background, and posts a system notification with
// the standard Notification API. Types: docs/web-apps.d.ts.

const cirrus = navigator.cirrus;
const countEl = document.getElementById('count');
const statusEl = document.getElementById('status');

let count = Number(localStorage.getItem('count') ?? 0) || 0;
countEl.textContent = String(count);
document.getElementById('title').textContent = cirrus ? cirrus.app.name : document.title;

function save() {
  localStorage.setItem('count', String(count));
}

document.getElementById('tap').addEventListener('click', () => {
  count += 1;
  countEl.textContent = String(count);
  save();
});

document.getElementById('notify').addEventListener('click', async () => {
  // Granted at install when the manifest lists the `notifications` permission.
  const permission = Notification.permission === 'granted'
    ? 'granted'
    : await Notification.requestPermission();
  if (permission !== 'granted') {
    statusEl.textContent = 'Notifications are off for this app (Settings → Apps).';
    return;
  }
  new Notification(document.title, { body: `${count} taps so far`, tag: 'count' });
  statusEl.textContent = 'Notification sent.';
});

// Lifecycle: the system may stop a background app without further notice, so save on pause.
if (cirrus) {
  cirrus.addEventListener('pause', save);
  cirrus.addEventListener('resume', () => { statusEl.textContent = 'Welcome back.'; });
}
document.addEventListener('visibilitychange', () => {
  if (document.visibilityState === 'hidden') save();
});
