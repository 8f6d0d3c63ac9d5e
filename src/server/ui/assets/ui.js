// MediaGit web interface: the small pieces that need a script. Pages work
// without it (2-up and difference comparisons, every link and form); this
// adds swipe and onion-skin comparison and draws audio waveforms.
'use strict';

function setupImageCompare(root) {
  const panels = root.querySelectorAll('.mode-panel');
  const show = (mode) => {
    for (const panel of panels) panel.hidden = panel.dataset.mode !== mode;
    if (mode === 'swipe' || mode === 'onion') fitOverlays(root);
  };
  for (const radio of root.querySelectorAll('input[name="mode"]')) {
    radio.addEventListener('change', () => show(radio.value));
  }
  const swipe = root.querySelector('#swipe-at');
  const swipeStage = root.querySelector('[data-mode="swipe"] .stage');
  const applySwipe = () => {
    const at = Number(swipe.value);
    swipeStage.querySelector('.over').style.width = `${at}%`;
    swipeStage.querySelector('.divider').style.left = `${at}%`;
  };
  swipe.addEventListener('input', applySwipe);
  const onion = root.querySelector('#onion-at');
  const onionOver = root.querySelector('[data-mode="onion"] .over');
  const applyOnion = () => {
    onionOver.style.opacity = String(Number(onion.value) / 100);
  };
  onion.addEventListener('input', applyOnion);
  window.addEventListener('resize', () => fitOverlays(root));
  for (const img of root.querySelectorAll('.stage img'))
    img.addEventListener('load', () => fitOverlays(root));
  applySwipe();
  applyOnion();
  const checked = root.querySelector('input[name="mode"]:checked');
  show(checked ? checked.value : 'two-up');
}

// The overlay image is drawn at the base image's rendered size, so the two line up.
function fitOverlays(root) {
  for (const stage of root.querySelectorAll('.stage')) {
    const base = stage.querySelector(':scope > img');
    const over = stage.querySelector('.over img');
    if (base && over && base.clientWidth > 0) {
      over.style.width = `${base.clientWidth}px`;
      over.style.height = `${base.clientHeight}px`;
    }
  }
}

const waveforms = [];

async function loadWaveform(canvas) {
  const response = await fetch(canvas.dataset.peaks, { credentials: 'same-origin' });
  const body = await response.json();
  if (!response.ok) {
    canvas.setAttribute(
      'aria-label',
      `No waveform: ${body.error ? body.error.message : response.status}`,
    );
    const note = document.createElement('p');
    note.className = 'placeholder';
    note.textContent = `No waveform: ${body.error ? body.error.message : response.status}`;
    canvas.replaceWith(note);
    return;
  }
  const wave = { canvas, peaks: body.peaks, duration: body.duration, zoom: 1, offset: 0 };
  canvas.setAttribute(
    'aria-label',
    `${canvas.getAttribute('aria-label')}: ${body.duration.toFixed(2)} s, ${body.channels} channels, ${body.sampleRate} Hz`,
  );
  waveforms.push(wave);
  drawWaveform(wave);
}

function drawWaveform(wave) {
  const { canvas, peaks } = wave;
  const context = canvas.getContext('2d');
  const width = canvas.width;
  const height = canvas.height;
  context.clearRect(0, 0, width, height);
  context.fillStyle = '#f6f8fa';
  context.fillRect(0, 0, width, height);
  context.strokeStyle = '#d0d7de';
  context.beginPath();
  context.moveTo(0, height / 2);
  context.lineTo(width, height / 2);
  context.stroke();
  const visible = peaks.length / wave.zoom;
  const first = Math.min(peaks.length - visible, wave.offset * (peaks.length - visible));
  context.fillStyle = '#0b5cad';
  for (let x = 0; x < width; x++) {
    const from = Math.floor(first + (x / width) * visible);
    const to = Math.max(from + 1, Math.floor(first + ((x + 1) / width) * visible));
    let low = 0;
    let high = 0;
    for (let i = from; i < to && i < peaks.length; i++) {
      low = Math.min(low, peaks[i][0]);
      high = Math.max(high, peaks[i][1]);
    }
    const top = ((1 - high) / 2) * height;
    const bottom = ((1 - low) / 2) * height;
    context.fillRect(x, top, 1, Math.max(1, bottom - top));
  }
}

function setupSharedZoom(root) {
  const zoom = root.querySelector('#zoom');
  const scroll = root.querySelector('#scroll');
  const apply = () => {
    for (const wave of waveforms) {
      if (!root.contains(wave.canvas)) continue;
      wave.zoom = Number(zoom.value);
      wave.offset = Number(scroll.value) / 1000;
      drawWaveform(wave);
    }
  };
  zoom.addEventListener('input', apply);
  scroll.addEventListener('input', apply);
}

document.addEventListener('DOMContentLoaded', () => {
  for (const root of document.querySelectorAll('[data-compare="image"]')) setupImageCompare(root);
  for (const root of document.querySelectorAll('[data-compare="audio"]')) setupSharedZoom(root);
  for (const canvas of document.querySelectorAll('canvas.waveform[data-peaks]')) {
    loadWaveform(canvas).catch((error) => {
      canvas.setAttribute('aria-label', `No waveform: ${error.message}`);
    });
  }
});
