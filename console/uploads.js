// Uploads: one presigned PUT for a small file, resumable (TUS) pieces for a large one, with
// progress, pause/resume and cancel per file.

import { $, api, el, errorText, failure, formatSize, local, showUsage, state, tokenRefused } from './common.js';
import { loadPage } from './gallery.js';

const SMALL = 8 * 1024 * 1024; // up to this size: one presigned PUT; larger: resumable (TUS) pieces
const PIECE = 4 * 1024 * 1024;
// Statuses after which an upload cannot go on: the server refused it (others — a lost connection,
// an expired token — may be resumed). A PATCH's 409 is not one: another request (the one a pause
// cut off) is still being stored, so the offset is asked again; a creation's 409 (the name is
// taken) is final.
const FINAL = new Set([400, 403, 404, 413, 415, 460]);
const CONFLICT_RETRIES = 8;
// Upload progress values per file name, for the browser tests (they would miss events polled).
window.__progressLog = {};

// ISO media brands (major or compatible) of MP4 video, and major brands that are no video (images,
// audio), as the server tells them (3GP's are not recognised either).
const MP4_BRANDS = new Set(['isom', 'iso2', 'iso3', 'iso4', 'iso5', 'iso6', 'iso7', 'iso8', 'iso9', 'mp41', 'mp42', 'mp71', 'avc1',
  'av01', 'hvc1', 'hev1', 'dash', 'M4V ', 'M4VH', 'M4VP', 'f4v ', 'mmp4', 'MSNV', 'XAVC', 'cmfc', 'cmf2', 'dby1']);
const NOT_VIDEO_BRANDS = new Set(['heic', 'heix', 'heim', 'heis', 'hevc', 'hevx', 'mif1', 'msf1', 'avif', 'avis', 'jp2 ', 'jpx ',
  'crx ', 'M4A ', 'M4B ', 'M4P ', 'F4A ', 'F4B ']);

const TOP_LEVEL_BOXES = new Set(['free', 'skip', 'mdat', 'moov', 'wide', 'uuid', 'pdin', 'meta', 'sidx', 'styp', 'moof', 'emsg',
  'prft', 'mfra', 'junk', 'pnot']);
const MOVIE_BOXES = new Set(['mvhd', 'cmov', 'rmra', 'trak', 'udta', 'meta', 'iods', 'mvex', 'prfl', 'free', 'skip', 'wide', 'uuid']);

/** An ISO media file's type from its first box (the server's rules: a well-formed `ftyp` followed
 * by a box, or an older QuickTime file's first box). */
function isoMedia(b) {
  if (b.length < 8) return null;
  const sizeAt = (i) => ((b[i] << 24) >>> 0) + (b[i + 1] << 16) + (b[i + 2] << 8) + b[i + 3];
  const text = (from, to) => String.fromCharCode(...b.slice(from, to));
  const brand = (i) => (/^[A-Za-z0-9 ]{4}$/.test(text(i, i + 4)) ? text(i, i + 4) : null);
  const isBoxHeader = (i, types = TOP_LEVEL_BOXES) => {
    if (i + 8 > b.length) return i >= 64 - 8;
    const n = sizeAt(i);
    return (n >= 8 || n <= 1) && types.has(brand(i + 4));
  };
  const first = sizeAt(0);
  switch (text(4, 8)) {
    case 'ftyp': {
      if (first < 16 || first > 4096 || first % 4 !== 0 || b.length < Math.min(first + 8, 64) || !isBoxHeader(first)) return null;
      const brands = [brand(8)];
      for (let i = 16; i + 4 <= Math.min(first, b.length); i += 4) brands.push(brand(i));
      if (brands.includes(null)) return null;
      const major = brands[0];
      if (major === 'qt  ') return 'video/quicktime';
      if (NOT_VIDEO_BRANDS.has(major) || major.startsWith('3gp') || major.startsWith('3g2')) return null;
      return brands.some((one) => MP4_BRANDS.has(one)) ? 'video/mp4' : null;
    }
    case 'wide':
      return first === 8 && b.length >= 24 && isBoxHeader(8) && ['mdat', 'moov', 'free'].includes(text(12, 16)) ? 'video/quicktime' : null;
    case 'pnot': return first === 20 && b.length >= 28 && isBoxHeader(20) ? 'video/quicktime' : null;
    case 'moov': return first >= 16 && b[0] < 0x20 && b.length >= 24 && isBoxHeader(8, MOVIE_BOXES) ? 'video/quicktime' : null;
    case 'mdat': {
      const valid = (first >= 8 && (first + 8 > 64 || isBoxHeader(first))) || first <= 1;
      return valid && first !== 8 && b[0] < 0x20 && b.length >= 24 ? 'video/quicktime' : null;
    }
    default: return null;
  }
}

/** A whole EBML header (its size field read) with DocType `webm`, then a Segment (the server's rule). */
function isWebM(b) {
  if (b.length <= 4) return false;
  const width = Math.clz32(b[4]) - 24 + 1;
  if (width > 8 || b.length < 4 + width) return false;
  let size = b[4] & (0xff >> width);
  for (let i = 5; i < 4 + width; i += 1) size = size * 256 + b[i];
  const end = 4 + width + size;
  if (size > 4096 || b.length < Math.min(end + 4, 64)) return false;
  if (end + 4 <= b.length && !(b[end] === 0x18 && b[end + 1] === 0x53 && b[end + 2] === 0x80 && b[end + 3] === 0x67)) return false;
  const element = [0x42, 0x82, 0x84, 0x77, 0x65, 0x62, 0x6d];
  for (let i = 4 + width; i + element.length <= Math.min(end, b.length); i += 1) {
    if (element.every((value, k) => b[i + k] === value)) return true;
  }
  return false;
}

/** What the file's first bytes are, as the server tells them (it decides by the bytes too); null
 * for bytes it does not recognise. A PNG without an extension, or named .jpg, is sent as a PNG. */
async function sniffedType(file) {
  const b = new Uint8Array(await file.slice(0, 64).arrayBuffer());
  const ascii = (text) => [...text].map((c) => c.charCodeAt(0));
  const at = (magic, offset = 0) => magic.every((value, i) => b[offset + i] === value);
  if (at([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return 'image/png';
  if (at([0xff, 0xd8, 0xff])) return 'image/jpeg';
  if (at(ascii('GIF87a')) || at(ascii('GIF89a'))) return 'image/gif';
  if (at(ascii('RIFF')) && at(ascii('WEBP'), 8)) return 'image/webp';
  if (at(ascii('%PDF-'))) return 'application/pdf';
  const iso = isoMedia(b);
  if (iso) return iso;
  if (at([0x1a, 0x45, 0xdf, 0xa3]) && isWebM(b)) return 'video/webm';
  return null;
}

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

/** The upload's offset as the server has it now. */
async function offsetOf(url, tus) {
  let response = await fetch(url, { method: 'HEAD', headers: tus, cache: 'no-store' });
  // 409: a request of this upload (the one a pause cut off) is still being written: ask again.
  for (let retry = 1; response.status === 409 && retry <= CONFLICT_RETRIES; retry += 1) {
    await new Promise((resolve) => { setTimeout(resolve, 250 * retry); });
    response = await fetch(url, { method: 'HEAD', headers: tus, cache: 'no-store' });
  }
  if (!response.ok) {
    const text = response.status === 404 ? 'The upload expired or ended' : (await errorText(response));
    throw failure(response.status, text);
  }
  return Number(response.headers.get('Upload-Offset'));
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
    if (response.status !== 201) throw Object.assign(failure(response.status, await errorText(response)), { final: response.status === 409 });
    transfer.url = local(response.headers.get('Location'));
    transfer.path = response.headers.get('Depot-Path');
    transfer.offset = 0;
  } else {
    transfer.offset = await offsetOf(transfer.url, tus);
  }
  let conflicts = 0;
  while (transfer.offset < file.size) {
    // Paused or cancelled between two pieces (no request to abort): stop before the next.
    if (transfer.pauseWanted || transfer.cancelled) throw new DOMException('paused', 'AbortError');
    const start = transfer.offset;
    const piece = file.slice(start, Math.min(start + PIECE, file.size));
    let answer;
    try {
      answer = await send('PATCH', transfer.url,
        { ...tus, 'Upload-Offset': String(start), 'Content-Type': 'application/offset+octet-stream' }, piece, transfer,
        (loaded) => showProgress(transfer, start + loaded));
    } catch (error) {
      if (error.status !== 409 || conflicts >= CONFLICT_RETRIES) throw error;
      conflicts += 1;
      await new Promise((resolve) => { setTimeout(resolve, 250 * conflicts); });
      transfer.offset = await offsetOf(transfer.url, tus);
      continue;
    }
    conflicts = 0;
    transfer.offset = Number(answer.header('Upload-Offset'));
    showProgress(transfer, transfer.offset);
  }
  return transfer.path;
}

async function run(transfer) {
  if (transfer.running) return; // Resume pressed while the paused run is still ending
  transfer.running = true;
  transfer.pauseWanted = false;
  try {
    await attempt(transfer);
  } finally {
    transfer.running = false;
  }
}

async function attempt(transfer) {
  setTransferState(transfer, 'uploading', transfer.resumable ? 'Uploading in resumable pieces…' : 'Uploading…');
  try {
    const declared = {
      jobId: $('#job').value.trim(),
      contentType: (await sniffedType(transfer.file)) || transfer.file.type || 'application/octet-stream',
      size: transfer.file.size, visibility: $('#visibility').value,
    };
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
    if (error.status === 401) tokenRefused(error.message);
    transfer.refused = error.final === true || FINAL.has(error.status);
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

export function addFiles(files) {
  for (const file of files) {
    const bar = el('progress', { max: 100, value: 0, 'aria-label': `Upload of ${file.name}` });
    const status = el('span', { className: 'transfer-status' });
    const pause = el('button', { type: 'button', text: 'Pause', hidden: true, 'aria-label': `Pause ${file.name}` });
    const resume = el('button', { type: 'button', text: 'Resume', hidden: true, 'aria-label': `Resume ${file.name}` });
    const stop = el('button', { type: 'button', text: 'Cancel', hidden: true, className: 'danger', 'aria-label': `Cancel ${file.name}` });
    const item = el('li', { className: 'transfer', dataset: { name: file.name, state: 'queued' } },
      el('span', { className: 'name', text: `${file.name} (${formatSize(file.size)})` }), bar, status, pause, resume, stop);
    const transfer = { file, bar, status, pause, resume, cancel: stop, item, resumable: file.size > SMALL };
    pause.addEventListener('click', () => { transfer.pauseWanted = true; transfer.xhr?.abort(); });
    resume.addEventListener('click', () => run(transfer));
    stop.addEventListener('click', () => cancel(transfer));
    $('#transfers').append(item);
    run(transfer);
  }
}
