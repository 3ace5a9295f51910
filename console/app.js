// Depot's web console: plain JavaScript modules, no build step. This one signs in and wires the
// page; common.js, uploads.js, gallery.js and admin.js hold the rest.

import { $, api, showUsage, state } from './common.js';
import { addFiles } from './uploads.js';
import { deleteSelected, loadPage, signSelected } from './gallery.js';
import { loadAdmin, wireAdmin } from './admin.js';

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
  wireAdmin();
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
