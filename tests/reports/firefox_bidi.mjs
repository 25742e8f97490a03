// Drive Firefox over WebDriver BiDi (node >= 20 with --experimental-websocket; no npm package):
// open a report page, wait for its viewer, click the cluster rows (last first), read the crosshair
// back, take a screenshot, and print one JSON line. Used by tests/reports/test_firefox.py.
//
//   node --experimental-websocket firefox_bidi.mjs PORT URL SCREENSHOT.png
import { writeFileSync } from 'node:fs';

const [port, url, png] = process.argv.slice(2);
const ws = new WebSocket(`ws://127.0.0.1:${port}/session`);
const pending = new Map();
const logs = [];
let id = 0;
let context = null;

function fail(message) {
  console.log(JSON.stringify({ failed: message, logs }));
  process.exit(2);
}
setTimeout(() => fail('timed out'), 90000);

ws.onmessage = (m) => {
  const d = JSON.parse(m.data);
  if (d.id && pending.has(d.id)) {
    pending.get(d.id)(d);
    pending.delete(d.id);
  } else if (d.method === 'log.entryAdded' && (!context || d.params.source?.context === context)) {
    logs.push({ level: d.params.level, text: d.params.text });
  }
};
ws.onerror = () => fail('no WebDriver BiDi on port ' + port);

function send(method, params) {
  return new Promise((resolve, reject) => {
    const i = ++id;
    pending.set(i, (d) => (d.error ? reject(new Error(`${method}: ${d.error} ${d.message}`)) : resolve(d.result)));
    ws.send(JSON.stringify({ id: i, method, params }));
  });
}

async function value(expression) {
  const r = await send('script.evaluate', { expression, target: { context }, awaitPromise: false });
  return r.result.value;
}

const sleep = (ms) => new Promise((s) => setTimeout(s, ms));
const CROSSHAIR = "document.getElementById('viewer').getAttribute('data-crosshair-mm')";

ws.onopen = async () => {
  try {
    await send('session.new', { capabilities: {} });
    await send('session.subscribe', { events: ['log.entryAdded'] });
    context = (await send('browsingContext.getTree', {})).contexts[0].context;
    await send('browsingContext.navigate', { context, url, wait: 'complete' });
    let state = null;
    for (let k = 0; k < 1200; k++) {
      state = await value("document.getElementById('viewer').getAttribute('data-viewer-state')");
      if (state !== 'pending' && state !== 'loading') break;
      await sleep(50);
    }
    const out = { state, logs, jumps: [] };
    out.volumes = Number(await value("document.getElementById('viewer').getAttribute('data-volumes-loaded')"));
    out.load_ms = Number(await value("document.getElementById('viewer').getAttribute('data-load-ms')"));
    out.status = await value("document.getElementById('viewer-status').textContent");
    out.start = await value(CROSSHAIR);
    const n = await value("document.querySelectorAll('#cluster-table tr[data-peak-mm]').length");
    for (let i = n - 1; i >= 0; i--) {
      const target = await value(`(function(){var r=document.querySelectorAll('#cluster-table tr[data-peak-mm]')[${i}];` +
        "r.click();return r.getAttribute('data-peak-mm')})()");
      await sleep(100);
      out.jumps.push({ target, crosshair: await value(CROSSHAIR) });
    }
    await value("window.scrollTo(0, document.getElementById('viewer').getBoundingClientRect().top + window.scrollY - 40)");
    await sleep(500);
    const shot = await send('browsingContext.captureScreenshot', { context });
    writeFileSync(png, Buffer.from(shot.data, 'base64'));
    console.log(JSON.stringify(out));
    await send('session.end', {});
    process.exit(0);
  } catch (e) {
    fail(String(e));
  }
};
