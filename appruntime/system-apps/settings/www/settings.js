// Settings: what the system says about itself (navigator.cirrus.device, from the image's
// /system/etc/build.toml), cloud sync's status (navigator.cirrus.system, which the platform's own
// apps get) and this app (navigator.cirrus.app).

const $ = (id) => document.getElementById(id);

function rows(list, pairs) {
  for (const [label, value] of pairs) {
    if (value === undefined || value === null || value === '') continue;
    const dt = document.createElement('dt');
    dt.textContent = label;
    const dd = document.createElement('dd');
    dd.textContent = String(value);
    list.append(dt, dd);
  }
}

const cirrus = navigator.cirrus;
const device = cirrus && cirrus.device;
if (device) {
  rows($('device'), [
    ['Device', device.device],
    ['Description', device.description],
    ['Build', device.build_id],
    ['Kernel', device.kernel_version],
  ]);
} else {
  $('device-missing').hidden = false;
}
if (cirrus) {
  rows($('self'), [
    ['Version', cirrus.app.version],
    ['App id', cirrus.app.id],
  ]);
}

const STATES = { idle: 'Up to date', syncing: 'Syncing', waiting: 'Waiting', paused: 'Paused' };

function bytes(n) {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) { v /= 1024; u++; }
  return `${v.toFixed(1)} ${units[u]}`;
}

async function showSync() {
  const system = cirrus && cirrus.system;
  if (!system) return;
  $('sync-section').hidden = false;
  const list = $('sync');
  try {
    const s = await system.syncStatus();
    const failed = s.errors.length > 0;
    $('sync-dot').className = `dot ${failed ? 'error' : s.state}`;
    $('sync-state').textContent = (STATES[s.state] || s.state) + (s.detail ? ` — ${s.detail}` : '');
    list.replaceChildren();
    rows(list, [
      ['Last sync', s.lastSyncMs ? new Date(s.lastSyncMs).toLocaleString() : 'Not yet'],
      ['Files', s.filesTotal ? `${s.filesDone} of ${s.filesTotal}` : ''],
      ['Data', s.bytesTotal ? `${bytes(s.bytesDone)} of ${bytes(s.bytesTotal)}` : ''],
      ['Deletions waiting for confirmation', s.heldDeletes || ''],
      ['Problems', s.errors.join('\n')],
    ]);
  } catch (e) {
    $('sync-dot').className = 'dot error';
    $('sync-state').textContent = e.message;
  }
}

showSync();
setInterval(() => { if (document.visibilityState === 'visible') showSync(); }, 5000);
