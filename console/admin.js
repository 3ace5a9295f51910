// The service role's part: buckets and their settings, jobs and dead letters, usage per tenant.

import { $, adminSay, api, describeUsage, el } from './common.js';

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

export async function loadAdmin() {
  try {
    const buckets = await api('GET', '/storage/v1/bucket');
    $('#buckets').replaceChildren(...buckets.map(bucketItem));
    const jobs = await api('GET', '/v1/jobs?state=dead&limit=50');
    $('#job-counts').textContent = Object.entries(jobs.counts).map(([k, v]) => `${k}: ${v}`).join(' · ') || 'no jobs';
    $('#dead-jobs').replaceChildren(...jobs.items.map((j) => el('li', { text: `${j.kind} ${j.id}: ${j.lastError ?? ''}` })));
  } catch (error) { adminSay(error.message); }
}

/** The service role's forms and buttons. */
export function wireAdmin() {
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
}
