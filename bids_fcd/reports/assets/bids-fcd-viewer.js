/* bids-fcd participant report viewer: the glue between the page and NiiVue (niivue.umd.js).
 *
 * One copy per output directory (OUTPUT_DIR/assets/), loaded as a classic script so that pages
 * work from file://. Reads #bids-fcd-viewer-config (JSON written by bids_fcd/reports/viewer.py)
 * and the base64 NIfTI volumes in <script type="text/plain" id="bids-fcd-volume-<key>">, shows
 * them in three synchronised planes, and records what it did on #viewer:
 *   data-viewer-state    pending | loading | loaded | no-webgl2 | no-script | failed
 *   data-volumes-loaded  number of volumes NiiVue holds
 *   data-load-ms         time from start to the first drawn frame (ms)
 *   data-crosshair-mm    crosshair position "x y z" in template mm (updated on every move)
 *   data-scanner-mm      the same point in the T1w's scanner mm, where the page carries it
 * and logs "bids-fcd viewer: N volumes loaded in T ms" once loaded.
 */
(function () {
  'use strict';
  var root = document.getElementById('viewer');
  if (!root || !document.getElementById('bids-fcd-viewer-config')) {
    return;  // no viewer on this page (the page says why)
  }
  var statusEl = document.getElementById('viewer-status');
  var readout = document.getElementById('viewer-readout');
  var STATIC = ' The static figures below show the same results.';

  function setState(state, message) {
    root.setAttribute('data-viewer-state', state);
    if (message !== undefined) {
      statusEl.textContent = message;
    }
  }

  function unavailable(state, message, isError) {
    setState(state, message + STATIC);
    statusEl.className = 'caveat';
    (isError ? console.error : console.warn)('bids-fcd viewer: ' + message);
  }

  function hasWebGL2() {
    try {
      return !!(window.WebGL2RenderingContext && document.createElement('canvas').getContext('webgl2'));
    } catch (e) {
      return false;
    }
  }

  if (!hasWebGL2()) {
    unavailable('no-webgl2', 'The interactive viewer is not shown: this browser provides no WebGL2 (switched ' +
      'off, or the graphics driver is blocked; chrome://gpu or about:support says which).');
    return;
  }
  if (!window.niivue || !window.niivue.Niivue) {
    unavailable('no-script', 'The interactive viewer is not shown: its script assets/niivue.umd.js did not ' +
      'load. Keep the assets/ folder of the output directory beside this page (copy the whole directory).');
    return;
  }

  var cfg = JSON.parse(document.getElementById('bids-fcd-viewer-config').textContent);
  var nv = new window.niivue.Niivue({
    backColor: [0, 0, 0, 1],
    crosshairColor: [0.0, 0.62, 0.45, 0.9],
    crosshairWidth: 0.5,
    isColorbar: true,
    show3Dcrosshair: false,
    multiplanarShowRender: window.niivue.SHOW_RENDER.NEVER,
    isRadiologicalConvention: false,
    dragAndDropEnabled: false,
    atlasOutline: 1,
    loadingText: '',
    logLevel: 'warn'
  });
  var vols = {};
  var byName = {};
  var affineRows = {};  // key -> the affine part of a coordinate volume (4 numbers)

  function fmt(v, digits) {
    return Number(v).toFixed(digits);
  }

  function index(key) {
    return nv.getVolumeIndexByID(vols[key].id);
  }

  function background() {
    return document.getElementById('viewer-background').value;
  }

  function triple(v) {
    return v.map(function (c) { return fmt(c, 1); });
  }

  function onLocation(loc) {
    var mm = [loc.mm[0], loc.mm[1], loc.mm[2]];
    root.setAttribute('data-crosshair-mm', triple(mm).join(' '));
    var parts = ['template mm (' + triple(mm).join(', ') + ')'];
    var native = {};
    var here = [];
    var bg = background();
    loc.values.forEach(function (v) {
      var key = byName[v.name];
      if (key && key.indexOf('native_') === 0) {
        native[key] = v.value;
      } else if (key === bg) {
        here.push(vols[key].label + ' ' + fmt(v.value, 2));
      } else if (key === 'z') {
        here.push('z ' + fmt(v.value, 2));
      } else if (key === 'clusters') {
        here.push(v.value > 0 ? 'cluster ' + Math.round(v.value) : 'no cluster');
      } else if (key === 'lesion' && v.value > 0) {
        here.push('in the lesion mask');
      }
    });
    if ('native_x' in native) {
      // each coordinate is stored as what is left after its affine part in template mm
      var scanner = triple(['native_x', 'native_y', 'native_z'].map(function (key) {
        var row = affineRows[key] || [0, 0, 0, 0];  // pages written before 2026-12-06 store the coordinate itself
        return native[key] + row[0] * mm[0] + row[1] * mm[1] + row[2] * mm[2] + row[3];
      }));
      root.setAttribute('data-scanner-mm', scanner.join(' '));
      parts.push('T1w scanner mm (' + scanner.join(', ') + ')');
    }
    parts.push('voxel [' + loc.vox.join(', ') + ']');
    readout.textContent = parts.concat(here).join(' · ');
  }

  function moveTo(mm) {
    nv.scene.crosshairPos = nv.mm2frac([mm[0], mm[1], mm[2]]);
    nv.drawScene();
    nv.createOnLocationChange();
  }

  function showBackground(key) {
    nv.setVolume(vols[key], 0);
    cfg.volumes.forEach(function (v) {
      if (v.kind === 'background') {
        nv.setOpacity(index(v.key), v.key === key ? 1 : 0);
      }
    });
    nv.createOnLocationChange();
  }

  function overlayOpacity() {
    var on = document.getElementById('viewer-z').checked;
    nv.setOpacity(index('z'), on ? Number(document.getElementById('viewer-opacity').value) : 0);
  }

  function labelOpacity(key, box) {
    if (vols[key]) {
      nv.setOpacity(index(key), document.getElementById(box).checked ? 1 : 0);
    }
  }

  function wire() {
    var thr = document.getElementById('viewer-threshold');
    var thrOut = document.getElementById('viewer-threshold-value');
    document.getElementById('viewer-background').addEventListener('change', function () {
      showBackground(background());
    });
    thr.addEventListener('input', function () {
      vols.z.cal_min = Number(thr.value);
      thrOut.textContent = fmt(thr.value, 1);
      nv.updateGLVolume();
    });
    document.getElementById('viewer-opacity').addEventListener('input', overlayOpacity);
    document.getElementById('viewer-z').addEventListener('change', overlayOpacity);
    document.getElementById('viewer-clusters').addEventListener('change', function () {
      labelOpacity('clusters', 'viewer-clusters');
    });
    var lesionBox = document.getElementById('viewer-lesion');
    if (lesionBox) {
      lesionBox.addEventListener('change', function () { labelOpacity('lesion', 'viewer-lesion'); });
    }
    Array.prototype.forEach.call(document.querySelectorAll('#cluster-table tr[data-peak-mm]'), function (row) {
      row.addEventListener('click', function () {
        var mm = row.getAttribute('data-peak-mm').split(' ').map(Number);
        Array.prototype.forEach.call(document.querySelectorAll('#cluster-table tr.current'), function (r) {
          r.classList.remove('current');
        });
        row.classList.add('current');
        moveTo(mm);
        root.scrollIntoView({block: 'nearest'});
      });
    });
  }

  async function load() {
    var t0 = performance.now();
    setState('loading', 'Loading the viewer…');
    await nv.attachToCanvas(document.getElementById('viewer-canvas'));
    nv.addColormap('bids_fcd_overlay', cfg.overlay_colormap);
    nv.onLocationChange = onLocation;
    // Decode every volume, then hand NiiVue the whole list at once: one GPU upload instead of one
    // per addVolume (which re-uploads every layer each time; three times slower in software WebGL).
    var imgs = await Promise.all(cfg.volumes.map(function (v, i) {
      return window.niivue.NVImage.loadFromBase64({
        base64: document.getElementById('bids-fcd-volume-' + v.key).textContent,
        name: v.key + '.nii.gz',
        colormap: v.kind === 'overlay' ? 'bids_fcd_overlay' : 'gray',
        cal_min: v.cal_min,
        cal_max: v.cal_max,
        opacity: (v.kind === 'background' && i > 0) || v.kind === 'coordinate' ? 0 : (v.kind === 'overlay' ? 0.8 : 1),
        colorbarVisible: v.kind === 'overlay'
      });
    }));
    imgs.forEach(function (img, i) {
      var v = cfg.volumes[i];
      if (v.lut) {
        img.setColormapLabel(v.lut);
      }
      img.label = v.label;
      vols[v.key] = img;
      if (v.affine_row) {
        affineRows[v.key] = v.affine_row;
      }
      byName[img.name] = v.key;
    });
    nv.volumes = imgs.slice();
    nv.setVolume(imgs[0], 0);
    nv.setSliceType(nv.sliceTypeMultiplanar);
    wire();
    moveTo(cfg.start_mm);
    var ms = Math.round(performance.now() - t0);
    root.setAttribute('data-volumes-loaded', String(nv.volumes.length));
    root.setAttribute('data-load-ms', String(ms));
    var shown = cfg.volumes.filter(function (v) { return v.kind !== 'coordinate'; }).length;
    setState('loaded', 'Interactive viewer: ' + shown + ' layers in ' + cfg.space +
      (vols.native_x ? '; the read-out also gives T1w scanner mm.' : '.'));
    console.log('bids-fcd viewer: ' + nv.volumes.length + ' volumes loaded in ' + ms + ' ms');
  }

  load().catch(function (e) {
    unavailable('failed', 'The interactive viewer failed to load (' + e + ').', true);
  });
}());
