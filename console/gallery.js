// The gallery: the caller's objects by job, with thumbnails, infinite scroll, search, and one-click
// actions on one object or on those selected.

import { $, api, el, encodePath, formatSize, local, say, state } from './common.js';

const PAGE = 60;
const IMAGE = /^image\/(png|jpeg|webp|gif)$/;
// An original up to this size may be its own thumbnail; a larger one never is (a 150 MiB image
// would cost 150 MiB per card): it shows a placeholder until one of its variants is ready.
const ORIGINAL_THUMBNAIL_MAX = 1024 * 1024;
const VARIANT_POLL_MS = 2000;
const VARIANT_POLLS = 30;
const LABELS = { quicktime: 'MOV', 'octet-stream': 'FILE', 'svg+xml': 'SVG' };

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
  card.img.hidden = false;
  card.placeholder.hidden = true;
}

/** What the card shows instead of a picture: the kind of file, and why there is no preview. */
function placeholderFor(card, asset, note) {
  card.img.hidden = true;
  card.img.removeAttribute('src');
  const subtype = asset.contentType.split(';')[0].split('/')[1] ?? 'file';
  const label = LABELS[subtype] ?? subtype.replace(/^x-/, '').toUpperCase();
  card.placeholder.textContent = note ? `${label} · ${note}` : label;
  card.placeholder.hidden = false;
}

/** Whether the card waits for a variant: an image too large to be its own thumbnail. */
function needsVariant(card, asset) {
  return IMAGE.test(asset.contentType) && asset.fileSize > ORIGINAL_THUMBNAIL_MAX && !card.variantPath;
}

/** Asks for the image's variants until one up to 112 pixels wide is ready (then it is the
 * thumbnail) or none is pending (the placeholder says so). */
async function watchVariants(card, path) {
  if (card.watching) return;
  card.watching = true;
  try {
    for (let i = 0; i < VARIANT_POLLS; i += 1) {
      if (state.cards.get(path) !== card || card.variantPath) return; // reloaded, deleted, or listed
      const asset = await api('GET', `/v1/assets/${encodePath(path)}`);
      const variants = asset.variants ?? [];
      const ready = variants
        .filter((v) => v.state === 'ready' && Number(v.size.split('x')[0]) <= 112)
        .sort((a, b) => Number(b.size.split('x')[0]) - Number(a.size.split('x')[0]))[0];
      if (ready) {
        const variant = await fresh(ready.path);
        // (A file named as a variant may be anyone's upload, of any size.)
        if (variant.fileSize > ORIGINAL_THUMBNAIL_MAX) {
          placeholderFor(card, asset, 'no preview');
          return;
        }
        card.variantPath = ready.path;
        thumbnailFor(card, variant);
        return;
      }
      if (!variants.some((v) => v.state === 'pending')) {
        placeholderFor(card, asset, 'no preview');
        return;
      }
      await new Promise((resolve) => { setTimeout(resolve, VARIANT_POLL_MS); });
    }
  } catch {
    // The card keeps its placeholder.
  } finally {
    card.watching = false;
  }
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
  if (card.variantPath) return;
  if (!IMAGE.test(asset.contentType)) placeholderFor(card, asset);
  else if (asset.fileSize <= ORIGINAL_THUMBNAIL_MAX) thumbnailFor(card, asset);
  else if (!card.watching) placeholderFor(card, asset, 'preview being made…');
}

function renderCard(asset) {
  const id = `name-${state.cards.size}`;
  const name = asset.path.slice(asset.path.lastIndexOf('/') + 1);
  const select = el('input', { type: 'checkbox', 'aria-label': `Select ${name}` });
  const img = el('img', { alt: `Preview of ${name}`, loading: 'lazy', width: 112, height: 112, hidden: true });
  const placeholder = el('span', { className: 'placeholder', hidden: true });
  const label = el('p', { className: 'name', id, text: name, title: asset.path });
  const meta = el('p', { className: 'meta' });
  const visibility = el('button', { type: 'button', className: 'visibility', 'aria-describedby': id });
  const copy = el('button', { type: 'button', text: 'Copy link', 'aria-describedby': id });
  const download = el('button', { type: 'button', text: 'Download', 'aria-describedby': id });
  const remove = el('button', { type: 'button', text: 'Delete', className: 'danger', 'aria-describedby': id });
  const item = el('li', { className: 'card', dataset: { path: asset.path } },
    select, el('div', { className: 'thumb' }, img, placeholder), label, meta,
    el('div', { className: 'actions' }, visibility, copy, download, remove));
  const card = { item, img, placeholder, meta, visibility, variantPath: null, watching: false };
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
      // (A file named as a variant may be anyone's upload, of any size: a large one is never loaded.)
      if (asset.fileSize > ORIGINAL_THUMBNAIL_MAX) continue;
      if (!card.variantPath || (width <= 112 && (width > current || current > 112))) {
        card.variantPath = asset.path;
        thumbnailFor(card, asset);
      }
      continue;
    }
    if (state.cards.has(asset.path)) updateCard(state.cards.get(asset.path), asset);
    else renderCard(asset);
  }
  // After the whole page: its variants were listed with it (after their images).
  for (const asset of assets) {
    const card = state.cards.get(asset.path);
    if (card && needsVariant(card, asset)) watchVariants(card, asset.path);
  }
}

/** The next page of the listing; `reset`: from the first page again (after an upload, a search). */
export async function loadPage(reset) {
  if (state.loading) {
    // One listing at a time: a reload asked for meanwhile (another upload ended) runs after it, as
    // the listing in flight may predate what it should show.
    if (reset) state.reloadWanted = true;
    return;
  }
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
  if (state.done) return;
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
  if (state.reloadWanted) {
    state.reloadWanted = false;
    await loadPage(true);
  }
}

function updateSelection() {
  $('#selected-count').textContent = `${state.selected.size} selected`;
  $('#sign-selected').disabled = state.selected.size === 0;
  $('#delete-selected').disabled = state.selected.size === 0;
}

export async function signSelected() {
  try {
    const paths = [...state.selected];
    const answer = await api('POST', '/v1/signed-urls', { paths, expiresIn: 3600 });
    const links = $('#signed-links');
    links.value = paths.map((p) => `${p}\t${answer.urls[p] ?? answer.errors?.[p]?.message ?? ''}`).join('\n');
    links.hidden = false;
    say(`${Object.keys(answer.urls).length} link(s): signed ones work for an hour, public ones always`);
  } catch (error) { say(error.message); }
}

export async function deleteSelected() {
  const paths = [...state.selected];
  if (!confirm(`Delete ${paths.length} file(s)? This cannot be undone.`)) return;
  try {
    const answer = await api('POST', '/v1/assets/delete', { paths });
    for (const path of answer.deleted) dropCard(path);
    const failed = Object.keys(answer.errors ?? {}).length;
    say(`Deleted ${answer.deleted.length} file(s)${failed ? `; ${failed} not deleted` : ''}`);
  } catch (error) { say(error.message); }
}
