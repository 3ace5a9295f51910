// Depot's web console: plain JavaScript, no build step. Everything it shows that came from the
// server or from a file name is set as text (textContent), never as markup.

const SMALL = 8 * 1024 * 1024; // up to this size: one presigned PUT; larger: resumable (TUS) pieces
const PIECE = 4 * 1024 * 1024;
const PAGE = 60;
// Statuses after which an upload cannot go on: the server refused it (others — a lost connection,
// an expired token — may be resumed).
const FINAL = new Set([400, 403, 404, 409, 413, 415, 460]);
const IMAGE = /^image\/(png|jpeg|webp|gif)$/;

const $ = (selector) => document.querySelector(selector);
const state = {
  token: null, claims: null, cursor: null, done: false, loading: false, query: '',
  items: new Map(), cards: new Map(), groups: new Map(), selected: new Set(),
};
// Upload progress values per file name, for the browser tests (they would miss events polled).
window.__progressLog = {};

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === 'text') node.textContent = value;
    else if (key === 'dataset') Object.assign(node.dataset, value);
    else if (key.startsWith('aria-') || key === 'role' || key === 'for') node.setAttribute(key, value);
    else node[key] = value;
  }
  node.append(...children);
  return node;
}

/** The path and query of a URL the server returned, on this page's own origin. */
function local(url) {
  const u = new URL(url, location.href);
  return u.pathname + u.search;
}

function encodePath(path) { return path.split('/').map(encodeURIComponent).join('/'); }

function formatSize(n) {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let i = -1;
  do { n /= 1024; i += 1; } while (n >= 1024 && i < units.length - 1);
  return `${n.toFixed(n < 10 ? 1 : 0)} ${units[i]}`;
}

function decodeClaims(token) {
  const part = token.split('.')[1];
  try {
    const base64 = part.replace(/-/g, '+').replace(/_/g, '/').padEnd(Math.ceil(part.length / 4) * 4, '=');
    const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    throw new Error('this is not a token: paste a JWT (three parts separated by dots, from `depot token` or `depot keys`)');
  }
}

function failure(status, message) {
  return Object.assign(new Error(message), { status });
}

async function errorText(response) {
  let detail = '';
  try {
    const body = await response.json();
    detail = body?.error?.message ?? body?.message ?? '';
  } catch { /* not JSON */ }
  const what = {
    401: 'Not signed in (the token is missing, wrong or expired)', 403: 'Not allowed', 404: 'Not found',
    409: 'Conflict', 413: 'Too large or over quota', 415: 'Type refused', 429: 'Too many requests',
  }[response.status] ?? `HTTP ${response.status}`;
  return detail ? `${what}: ${detail}` : what;
}

async function api(method, path, body) {
  const headers = { Authorization: `Bearer ${state.token}` };
  const init = { method, headers, cache: 'no-store' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  if (!response.ok) throw failure(response.status, await errorText(response));
  return response.status === 204 ? null : response.json();
}

function say(text) { $('#status').textContent = text; }
function adminSay(text) { $('#admin-status').textContent = text; }

// MARK: Signing in

async function signIn(pasted) {
  const token = pasted.replace(/^Bearer\s+/i, '');
  const claims = decodeClaims(token);
  state.token = token;
  state.claims = claims;
  await api('GET', '/v1/assets?limit=1');
  sessionStorage.setItem('depot.token', token);
  const role = claims.role ?? 'anon';
  $('#who').textContent = claims.sub ? `Signed in as ${claims.sub} (${role})` : `Signed in as ${role}`;
  $('#sign-in').hidden = true;
  $('#sign-out').hidden = false;
  $('#upload').hidden = !claims.sub;
  $('#prefix').textContent = claims.sub ? `${claims.sub}/` : '';
  $('#gallery').hidden = false;
  $('#admin').hidden = role !== 'service_role';
  document.body.dataset.state = 'ready';
  if (claims.sub) await showUsage();
  if (role === 'service_role') await loadAdmin();
  await loadPage(true);
  $(claims.sub ? '#upload-title' : role === 'service_role' ? '#admin-title' : '#gallery-title').focus();
}

function signOut() {
  sessionStorage.removeItem('depot.token');
  location.reload();
}

function describeUsage(u) {
  const of = (used, limit, format) => (limit > 0 ? `${format(used)} of ${format(limit)}` : format(used));
  const held = u.resumableUploads ? ` (${formatSize(u.resumableBytes)} held by ${u.resumableUploads} unfinished upload(s))` : '';
  return `${u.user}: ${of(u.bytes, u.limits.bytes, formatSize)} stored, ${of(u.objects, u.limits.objects, String)} files${held}`;
}

async function showUsage() {
  try { $('#usage').textContent = describeUsage(await api('GET', '/v1/usage')); } catch (error) { $('#usage').textContent = ''; }
}

// MARK: Uploads

function metadata(pairs) {
  return Object.entries(pairs)
    .map(([key, value]) => `${key} ${btoa(String.fromCharCode(...new TextEncoder().encode(value)))}`)
    .join(',');
}

/** One request with upload progress; resolves with the response's status and headers. */
function send(method, url, headers, body, transfer, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    transfer.xhr = xhr;
    xhr.open(method, url);
    for (const [key, value] of Object.entries(headers)) xhr.setRequestHeader(key, value);
    xhr.upload.addEventListener('progress', (e) => { if (e.lengthComputable) onProgress(e.loaded); });
    xhr.addEventListener('load', () => {
      transfer.xhr = null;
      if (xhr.status >= 200 && xhr.status < 300) {
        resolve({ status: xhr.status, header: (name) => xhr.getResponseHeader(name) });
        return;
      }
      const response = new Response(xhr.responseText || null, { status: xhr.status });
      errorText(response).then((text) => reject(failure(xhr.status, text)));
    });
    xhr.addEventListener('error', () => { transfer.xhr = null; reject(failure(0, 'the connection failed')); });
    xhr.addEventListener('abort', () => { transfer.xhr = null; reject(new DOMException('paused', 'AbortError')); });
    xhr.send(body);
  });
}

function showProgress(transfer, loaded) {
  const percent = Math.min(100, Math.floor((100 * loaded) / Math.max(transfer.file.size, 1)));
  transfer.bar.value = percent;
  const log = (window.__progressLog[transfer.file.name] ??= []);
  if (log[log.length - 1] !== percent) log.push(percent);
}

function setTransferState(transfer, name, text) {
  transfer.item.dataset.state = name;
  transfer.status.textContent = text;
  const canGoOn = transfer.resumable && transfer.url && (name === 'paused' || (name === 'error' && !transfer.refused));
  transfer.pause.hidden = !(transfer.resumable && name === 'uploading');
  transfer.resume.hidden = !canGoOn;
  transfer.cancel.hidden = !(name === 'uploading' || canGoOn);
  transfer.bar.hidden = name === 'error' || name === 'cancelled';
}

/** Ends the upload on the server too (TUS termination), so it holds no quota. */
async function cancel(transfer) {
  transfer.cancelled = true;
  transfer.xhr?.abort();
  if (transfer.url) {
    await fetch(transfer.url, { method: 'DELETE', headers: { Authorization: `Bearer ${state.token}`, 'Tus-Resumable': '1.0.0' } })
      .catch(() => {});
  }
  setTransferState(transfer, 'cancelled', 'Cancelled');
  await showUsage();
}

async function presigned(transfer, declared) {
  const plan = await api('POST', '/v1/presigned-uploads', declared);
  await send('PUT', local(plan.uploadUrl), { 'Content-Type': declared.contentType }, transfer.file, transfer,
    (loaded) => showProgress(transfer, loaded));
  return plan.path;
}

async function resumable(transfer, declared) {
  const tus = { Authorization: `Bearer ${state.token}`, 'Tus-Resumable': '1.0.0' };
  const file = transfer.file;
  if (!transfer.url) {
    const response = await fetch('/v1/uploads', {
      method: 'POST',
      headers: {
        ...tus, 'Upload-Length': String(file.size),
        'Upload-Metadata': metadata({ jobId: declared.jobId, contentType: declared.contentType, visibility: declared.visibility }),
      },
    });
    if (response.status !== 201) throw failure(response.status, await errorText(response));
    transfer.url = local(response.headers.get('Location'));
    transfer.path = response.headers.get('Depot-Path');
    transfer.offset = 0;
  } else {
    const response = await fetch(transfer.url, { method: 'HEAD', headers: tus, cache: 'no-store' });
    if (!response.ok) throw failure(response.status, `${response.status === 404 ? 'The upload expired or ended' : `HTTP ${response.status}`}`);
    transfer.offset = Number(response.headers.get('Upload-Offset'));
  }
  while (transfer.offset < file.size) {
    const start = transfer.offset;
    const piece = file.slice(start, Math.min(start + PIECE, file.size));
    const answer = await send('PATCH', transfer.url,
      { ...tus, 'Upload-Offset': String(start), 'Content-Type': 'application/offset+octet-stream' }, piece, transfer,
      (loaded) => showProgress(transfer, start + loaded));
    transfer.offset = Number(answer.header('Upload-Offset'));
    showProgress(transfer, transfer.offset);
  }
  return transfer.path;
}

async function run(transfer) {
  const declared = {
    jobId: $('#job').value.trim(), contentType: transfer.file.type || 'application/octet-stream',
    size: transfer.file.size, visibility: $('#visibility').value,
  };
  setTransferState(transfer, 'uploading', transfer.resumable ? 'Uploading in resumable pieces…' : 'Uploading…');
  try {
    const path = transfer.resumable ? await resumable(transfer, declared) : await presigned(transfer, declared);
    showProgress(transfer, transfer.file.size);
    setTransferState(transfer, 'done', `Uploaded as ${path}`);
    await showUsage();
    await loadPage(true);
  } catch (error) {
    if (transfer.cancelled) return;
    if (error.name === 'AbortError') {
      setTransferState(transfer, 'paused', `Paused at ${transfer.bar.value}% (${formatSize(transfer.offset ?? 0)} kept)`);
      return;
    }
    transfer.refused = FINAL.has(error.status);
    // A refusal is final: the upload is ended on the server so that it holds nothing.
    if (transfer.refused && transfer.url) {
      await fetch(transfer.url, { method: 'DELETE', headers: { Authorization: `Bearer ${state.token}`, 'Tus-Resumable': '1.0.0' } })
        .catch(() => {});
      transfer.url = null;
    }
    const hint = transfer.refused ? '' : transfer.resumable && transfer.url ? ' — Resume continues where it stopped' : '';
    setTransferState(transfer, 'error', error.message + hint);
  }
}

function addFiles(files) {
  for (const file of files) {
    const bar = el('progress', { max: 100, value: 0, 'aria-label': `Upload of ${file.name}` });
    const status = el('span', { className: 'transfer-status' });
    const pause = el('button', { type: 'button', text: 'Pause', hidden: true, 'aria-label': `Pause ${file.name}` });
    const resume = el('button', { type: 'button', text: 'Resume', hidden: true, 'aria-label': `Resume ${file.name}` });
    const stop = el('button', { type: 'button', text: 'Cancel', hidden: true, className: 'danger', 'aria-label': `Cancel ${file.name}` });
    const item = el('li', { className: 'transfer', dataset: { name: file.name, state: 'queued' } },
      el('span', { className: 'name', text: `${file.name} (${formatSize(file.size)})` }), bar, status, pause, resume, stop);
    const transfer = { file, bar, status, pause, resume, cancel: stop, item, resumable: file.size > SMALL };
    pause.addEventListener('click', () => transfer.xhr?.abort());
    resume.addEventListener('click', () => run(transfer));
    stop.addEventListener('click', () => cancel(transfer));
    $('#transfers').append(item);
    run(transfer);
  }
}

// MARK: The gallery

function groupFor(path) {
  const key = path.includes('/') ? path.slice(0, path.lastIndexOf('/')) : '';
  let group = state.groups.get(key);
  if (!group) {
    const list = el('ul', { className: 'cards' });
    const section = el('section', { className: 'group' }, el('h3', { text: key || '(top level)' }), list);
    $('#groups').append(section);
    group = { section, list };
    state.groups.set(key, group);
  }
  return group;
}

function thumbnailFor(card, asset) {
  card.img.src = local(asset.url);
}

/** The asset as it is now, with a fresh link (listed links expire). */
async function fresh(path) {
  const asset = await api('GET', `/v1/assets/${encodePath(path)}`);
  state.items.set(path, asset);
  return asset;
}

function updateCard(card, asset) {
  const isPublic = asset.visibility === 'public';
  card.visibility.textContent = isPublic ? 'Public' : 'Private';
  card.visibility.setAttribute('aria-pressed', String(isPublic));
  card.meta.textContent = `${formatSize(asset.fileSize)} · ${asset.contentType} · ${isPublic ? 'public link' : 'signed link'}`;
  if (IMAGE.test(asset.contentType) && !card.variantPath) thumbnailFor(card, asset);
}

function renderCard(asset) {
  const id = `name-${state.cards.size}`;
  const name = asset.path.slice(asset.path.lastIndexOf('/') + 1);
  const select = el('input', { type: 'checkbox', 'aria-label': `Select ${name}` });
  const img = el('img', { alt: `Preview of ${name}`, loading: 'lazy', width: 112, height: 112 });
  const label = el('p', { className: 'name', id, text: name, title: asset.path });
  const meta = el('p', { className: 'meta' });
  const visibility = el('button', { type: 'button', className: 'visibility', 'aria-describedby': id });
  const copy = el('button', { type: 'button', text: 'Copy link', 'aria-describedby': id });
  const download = el('button', { type: 'button', text: 'Download', 'aria-describedby': id });
  const remove = el('button', { type: 'button', text: 'Delete', className: 'danger', 'aria-describedby': id });
  const item = el('li', { className: 'card', dataset: { path: asset.path } },
    select, el('div', { className: 'thumb' }, img), label, meta,
    el('div', { className: 'actions' }, visibility, copy, download, remove));
  const card = { item, img, meta, visibility, variantPath: null };
  state.cards.set(asset.path, card);
  updateCard(card, asset);

  select.addEventListener('change', () => {
    if (select.checked) state.selected.add(asset.path); else state.selected.delete(asset.path);
    updateSelection();
  });
  visibility.addEventListener('click', async () => {
    const current = state.items.get(asset.path);
    const wanted = current.visibility === 'public' ? 'private' : 'public';
    try {
      const changed = await api('PATCH', `/v1/assets/${encodePath(asset.path)}`, { visibility: wanted });
      state.items.set(asset.path, changed);
      updateCard(card, changed);
      // The variant's old link ended with the flip: its thumbnail needs a new one.
      if (card.variantPath) thumbnailFor(card, await fresh(card.variantPath));
      say(`${name} is now ${wanted}`);
    } catch (error) { say(error.message); }
  });
  copy.addEventListener('click', async () => {
    try { await copyText((await fresh(asset.path)).url, `Link to ${name} copied`); } catch (error) { say(error.message); }
  });
  download.addEventListener('click', async () => {
    try {
      const url = (await fresh(asset.path)).url;
      const link = el('a', { href: local(url) + (url.includes('?') ? '&' : '?') + 'download=', hidden: true });
      document.body.append(link);
      link.click();
      link.remove();
    } catch (error) { say(error.message); }
  });
  remove.addEventListener('click', async () => {
    if (!confirm(`Delete ${name}? This cannot be undone.`)) return;
    try {
      await api('DELETE', `/v1/assets/${encodePath(asset.path)}`);
      dropCard(asset.path);
      say(`Deleted ${name}`);
    } catch (error) { say(error.message); }
  });
  groupFor(asset.path).list.append(item);
}

function dropCard(path) {
  const card = state.cards.get(path);
  const list = card?.item.parentElement;
  card?.item.remove();
  if (list && !list.children.length) {
    const key = [...state.groups].find(([, g]) => g.list === list)?.[0];
    list.parentElement.remove();
    state.groups.delete(key);
  }
  state.cards.delete(path);
  state.items.delete(path);
  state.selected.delete(path);
  updateSelection();
}

async function copyText(text, done) {
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    const area = el('textarea', { value: text, 'aria-hidden': 'true' });
    document.body.append(area);
    area.select();
    document.execCommand('copy');
    area.remove();
  }
  say(done);
}

function render(assets) {
  for (const asset of assets) {
    state.items.set(asset.path, asset);
    const card = asset.variantOf ? state.cards.get(asset.variantOf) : null;
    if (card) {
      // A variant of a listed image (the server's own sizes): its thumbnail, the largest up to
      // 112 pixels wide.
      const width = Number(asset.path.match(/_(\d+)x\d+(\.[^./]*)?$/)?.[1] ?? 0);
      const current = Number(card.variantPath?.match(/_(\d+)x\d+(\.[^./]*)?$/)?.[1] ?? 0);
      if (!card.variantPath || (width <= 112 && (width > current || current > 112))) {
        card.variantPath = asset.path;
        thumbnailFor(card, asset);
      }
      continue;
    }
    if (state.cards.has(asset.path)) updateCard(state.cards.get(asset.path), asset);
    else renderCard(asset);
  }
}

async function loadPage(reset) {
  if (reset) {
    state.cursor = null;
    state.done = false;
    state.items.clear();
    state.cards.clear();
    state.groups.clear();
    state.selected.clear();
    $('#groups').replaceChildren();
    updateSelection();
  }
  if (state.loading || state.done) return;
  state.loading = true;
  try {
    const query = new URLSearchParams({ limit: String(PAGE) });
    if (state.query) query.set('prefix', state.query);
    if (state.cursor) query.set('cursor', state.cursor);
    const page = await api('GET', `/v1/assets?${query}`);
    render(page.items);
    state.cursor = page.nextCursor;
    state.done = !page.nextCursor;
    $('#more').textContent = state.done ? `${state.cards.size} file(s)` : 'Scroll for more…';
  } catch (error) {
    say(error.message);
  } finally {
    state.loading = false;
  }
}

function updateSelection() {
  $('#selected-count').textContent = `${state.selected.size} selected`;
  $('#sign-selected').disabled = state.selected.size === 0;
  $('#delete-selected').disabled = state.selected.size === 0;
}

async function signSelected() {
  try {
    const paths = [...state.selected];
    const answer = await api('POST', '/v1/signed-urls', { paths, expiresIn: 3600 });
    const links = $('#signed-links');
    links.value = paths.map((p) => `${p}\t${answer.urls[p] ?? answer.errors?.[p]?.message ?? ''}`).join('\n');
    links.hidden = false;
    say(`${Object.keys(answer.urls).length} link(s): signed ones work for an hour, public ones always`);
  } catch (error) { say(error.message); }
}

async function deleteSelected() {
  const paths = [...state.selected];
  if (!confirm(`Delete ${paths.length} file(s)? This cannot be undone.`)) return;
  try {
    const answer = await api('POST', '/v1/assets/delete', { paths });
    for (const path of answer.deleted) dropCard(path);
    const failed = Object.keys(answer.errors ?? {}).length;
    say(`Deleted ${answer.deleted.length} file(s)${failed ? `; ${failed} not deleted` : ''}`);
  } catch (error) { say(error.message); }
}

// MARK: The service role

function bucketItem(bucket) {
  const name = el('span', { text: `${bucket.name} — ${bucket.public ? 'public' : 'private'}` });
  const flip = el('button', { type: 'button', text: bucket.public ? 'Make private' : 'Make public', 'aria-label': `${bucket.public ? 'Make private' : 'Make public'}: ${bucket.name}` });
  const empty = el('button', { type: 'button', text: 'Empty', className: 'danger', 'aria-label': `Empty ${bucket.name}` });
  flip.addEventListener('click', async () => {
    try {
      await api('PUT', `/storage/v1/bucket/${encodeURIComponent(bucket.id)}`, { public: !bucket.public });
      adminSay(`Bucket ${bucket.name} is now ${bucket.public ? 'private' : 'public'}`);
      await loadAdmin();
    } catch (error) { adminSay(error.message); }
  });
  empty.addEventListener('click', async () => {
    if (!confirm(`Delete every object in ${bucket.name}? This cannot be undone.`)) return;
    try {
      await api('POST', `/storage/v1/bucket/${encodeURIComponent(bucket.id)}/empty`);
      adminSay(`Bucket ${bucket.name} emptied`);
    } catch (error) { adminSay(error.message); }
  });
  // Settings: the size limit (bytes, or "10mb"; empty: the server's) and the allowed types.
  const limit = el('input', { value: bucket.file_size_limit ?? '', 'aria-label': `Size limit of ${bucket.name}`, placeholder: 'no limit' });
  const types = el('input', {
    value: (bucket.allowed_mime_types ?? []).join(', '), 'aria-label': `Allowed types of ${bucket.name}`, placeholder: 'any type',
  });
  const save = el('button', { type: 'submit', text: 'Save', 'aria-label': `Save settings of ${bucket.name}` });
  const settings = el('form', { className: 'row' }, el('span', { text: 'Size limit' }), limit, el('span', { text: 'Types' }), types, save);
  settings.addEventListener('submit', async (e) => {
    e.preventDefault();
    const size = limit.value.trim();
    const list = types.value.split(',').map((t) => t.trim()).filter(Boolean);
    try {
      await api('PUT', `/storage/v1/bucket/${encodeURIComponent(bucket.id)}`, {
        file_size_limit: size === '' ? null : /^\d+$/.test(size) ? Number(size) : size,
        allowed_mime_types: list.length ? list : null,
      });
      adminSay(`Settings of ${bucket.name} saved`);
      await loadAdmin();
    } catch (error) { adminSay(error.message); }
  });
  return el('li', { className: 'bucket' }, el('div', { className: 'row' }, name, flip, empty), settings);
}

async function loadAdmin() {
  try {
    const buckets = await api('GET', '/storage/v1/bucket');
    $('#buckets').replaceChildren(...buckets.map(bucketItem));
    const jobs = await api('GET', '/v1/jobs?state=dead&limit=50');
    $('#job-counts').textContent = Object.entries(jobs.counts).map(([k, v]) => `${k}: ${v}`).join(' · ') || 'no jobs';
    $('#dead-jobs').replaceChildren(...jobs.items.map((j) => el('li', { text: `${j.kind} ${j.id}: ${j.lastError ?? ''}` })));
  } catch (error) { adminSay(error.message); }
}

// MARK: Wiring

function start() {
  $('#sign-in-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    $('#sign-in-error').textContent = '';
    try {
      await signIn($('#token').value.trim());
      $('#token').value = '';
    } catch (error) {
      state.token = null;
      $('#sign-in-error').textContent = `Could not sign in: ${error.message}`;
    }
  });
  $('#sign-out').addEventListener('click', signOut);
  $('#files').addEventListener('change', (e) => { addFiles([...e.target.files]); e.target.value = ''; });
  const drop = $('#drop');
  drop.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('over'); });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    addFiles([...e.dataTransfer.files]);
  });
  $('#search-form').addEventListener('submit', (e) => {
    e.preventDefault();
    state.query = $('#search').value.trim();
    loadPage(true);
  });
  $('#sign-selected').addEventListener('click', signSelected);
  $('#delete-selected').addEventListener('click', deleteSelected);
  $('#bucket-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    try {
      await api('POST', '/storage/v1/bucket', { name: $('#bucket-name').value, public: $('#bucket-public').checked });
      adminSay(`Bucket ${$('#bucket-name').value} created`);
      await loadAdmin();
    } catch (error) { adminSay(error.message); }
  });
  $('#usage-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    try {
      const user = $('#usage-user').value.trim();
      $('#usage-result').textContent = describeUsage(await api('GET', `/v1/usage?user=${encodeURIComponent(user)}`));
    } catch (error) { $('#usage-result').textContent = error.message; }
  });
  $('#retry-dead').addEventListener('click', async () => {
    try {
      const answer = await api('POST', '/v1/jobs/retry', { allDead: true });
      adminSay(`${answer.retried} job(s) queued again`);
      await loadAdmin();
    } catch (error) { adminSay(error.message); }
  });
  new IntersectionObserver((entries) => {
    if (entries.some((e) => e.isIntersecting) && state.token) loadPage(false);
  }).observe($('#more'));
  const kept = sessionStorage.getItem('depot.token');
  if (kept) {
    signIn(kept).catch((error) => {
      sessionStorage.removeItem('depot.token');
      $('#sign-in-error').textContent = `Signed out: ${error.message}`;
    });
  }
}

start();
