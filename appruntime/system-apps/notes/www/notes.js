// Notes: each note is a Markdown file in the user's files, Documents/Notes/<title>.md, so cloud
// sync mirrors it and other devices (and other programs) see it as a plain file. Uses
// navigator.cirrus.files (the `user-files` permission, docs/web-apps.md).

const DIR = 'Documents/Notes';
const files = navigator.cirrus && navigator.cirrus.files;
const $ = (id) => document.getElementById(id);

/** The note open in the editor: {file, title, body, dirty}, or null on the list. */
let open = null;
let saveTimer = 0;
let deleteArmed = false;

/** A file name from a title: no slashes, backslashes or control characters, no leading dot. */
function fileNameFor(title) {
  let name = title.replace(/[\u0000-\u001f\u007f/\\]/g, ' ').replace(/\s+/g, ' ').trim();
  name = name.replace(/^\.+/, '').trim();
  if (name.length > 100) name = name.slice(0, 100).trim();
  return name || 'Untitled';
}

function titleOf(file) { return file.replace(/\.md$/, ''); }

function when(ms) {
  if (!ms) return '';
  const d = new Date(ms);
  const today = new Date();
  return d.toDateString() === today.toDateString()
    ? d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })
    : d.toLocaleDateString();
}

function status(text, error = false) {
  const el = $('status');
  el.textContent = text;
  el.className = error ? 'status error' : 'status';
}

async function notes() {
  const entries = await files.list(DIR);
  return entries.filter((e) => e.kind === 'file' && e.name.endsWith('.md'))
    .sort((a, b) => b.modified - a.modified);
}

async function showList() {
  await saveNow();
  open = null;
  $('edit-view').hidden = true;
  $('list-view').hidden = false;
  $('back').hidden = true;
  $('new').hidden = false;
  $('title').textContent = 'Notes';
  const list = $('notes');
  list.replaceChildren();
  let entries;
  try {
    entries = await notes();
  } catch (e) {
    status(`Cannot read ${DIR}: ${e.message}`, true);
    return;
  }
  status(entries.length ? '' : 'No notes yet. Tap “+ New” to write one.');
  for (const entry of entries) {
    const li = document.createElement('li');
    const name = document.createElement('div');
    name.className = 'name';
    name.textContent = titleOf(entry.name);
    const preview = document.createElement('div');
    preview.className = 'preview';
    const whenEl = document.createElement('div');
    whenEl.className = 'when';
    whenEl.textContent = when(entry.modified);
    li.append(name, preview, whenEl);
    li.addEventListener('click', () => edit(entry.name));
    list.append(li);
    files.read(`${DIR}/${entry.name}`).then((text) => {
      preview.textContent = text.split('\n').find((l) => l.trim()) || '';
    }).catch(() => {});
  }
}

function showEditor() {
  $('list-view').hidden = true;
  $('edit-view').hidden = false;
  $('back').hidden = false;
  $('new').hidden = true;
  $('title').textContent = open.title || 'New note';
  $('note-title').value = open.title;
  $('note-body').value = open.body;
  $('saved').textContent = open.file ? 'Saved' : '';
  disarmDelete();
}

async function edit(file) {
  try {
    const body = await files.read(`${DIR}/${file}`);
    open = { file, title: titleOf(file), body, dirty: false };
    showEditor();
  } catch (e) {
    status(`Cannot open ${titleOf(file)}: ${e.message}`, true);
  }
}

function create() {
  open = { file: null, title: '', body: '', dirty: false };
  showEditor();
  $('note-title').focus();
}

/** A free file name for `title` (another note may have it already). */
async function freeName(title, current) {
  const taken = new Set((await files.list(DIR)).map((e) => e.name));
  const base = fileNameFor(title);
  for (let n = 1; ; n++) {
    const name = n === 1 ? `${base}.md` : `${base} (${n}).md`;
    if (name === current || !taken.has(name)) return name;
  }
}

async function saveNow() {
  clearTimeout(saveTimer);
  if (!open || !open.dirty) return;
  const note = open;
  note.dirty = false;
  const title = $('note-title').value;
  const body = $('note-body').value;
  if (!note.file && !title.trim() && !body.trim()) return;
  try {
    const wanted = fileNameFor(title);
    let file = note.file;
    if (!file || titleOf(file) !== wanted) {
      const name = await freeName(title, file);
      if (file && name !== file) await files.rename(`${DIR}/${file}`, `${DIR}/${name}`);
      file = name;
    }
    await files.write(`${DIR}/${file}`, body);
    note.file = file;
    note.title = titleOf(file);
    note.body = body;
    if (open === note) {
      $('title').textContent = note.title;
      $('saved').textContent = 'Saved';
    }
  } catch (e) {
    note.dirty = true;
    $('saved').textContent = `Not saved: ${e.message}`;
  }
}

function changed() {
  if (!open) return;
  open.dirty = true;
  $('saved').textContent = 'Editing…';
  clearTimeout(saveTimer);
  saveTimer = setTimeout(saveNow, 1000);
}

function disarmDelete() {
  deleteArmed = false;
  $('delete').textContent = 'Delete';
}

async function remove() {
  if (!open) return;
  if (!deleteArmed) {
    deleteArmed = true;
    $('delete').textContent = 'Tap again to delete';
    return;
  }
  clearTimeout(saveTimer);
  const note = open;
  open = null;
  try {
    if (note.file) await files.remove(`${DIR}/${note.file}`);
  } catch (e) {
    open = note;
    $('saved').textContent = `Not deleted: ${e.message}`;
    return;
  }
  await showList();
}

function start() {
  if (!files) {
    status('Notes needs access to your files (the user-files permission).', true);
    $('new').hidden = true;
    return;
  }
  $('new').addEventListener('click', create);
  $('back').addEventListener('click', showList);
  $('delete').addEventListener('click', remove);
  $('note-title').addEventListener('input', () => { disarmDelete(); changed(); });
  $('note-body').addEventListener('input', () => { disarmDelete(); changed(); });
  // Going to the background saves at once: the system may stop a background app.
  navigator.cirrus.addEventListener('pause', saveNow);
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'hidden') saveNow();
    else if (!open) showList();
  });
  showList();
}

start();
