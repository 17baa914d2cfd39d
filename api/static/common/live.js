// Live notifications: GET /events read as a stream with fetch (an EventSource cannot send the
// bearer token). Reconnects by itself with Last-Event-ID, so nothing is missed; every event
// goes to onEvent, the connection state to onState ('live' | 'connecting' | 'down').
import { ROOT, who } from './api.js';

export function connectEvents({ onEvent, onHello = () => {}, onState = () => {}, query = '' }) {
  const st = { lastId: null, worker: null, stopped: false, controller: null, received: [] };

  function dispatch(block) {
    let kind = 'message', data = '', id = null;
    for (const line of block.split('\n')) {
      if (line.startsWith(':')) continue;
      const at = line.indexOf(':');
      const field = at < 0 ? line : line.slice(0, at);
      const value = at < 0 ? '' : line.slice(at + 1).replace(/^ /, '');
      if (field === 'event') kind = value;
      else if (field === 'data') data += (data ? '\n' : '') + value;
      else if (field === 'id') id = value;
    }
    if (id !== null) st.lastId = id;
    if (!data) return;
    const body = JSON.parse(data);
    if (kind === 'hello') { st.worker = body.worker; onHello(body); onState('live'); }
    else if (kind === 'case') { st.received.push(body); onEvent(body); }
  }

  async function run() {
    let wait = 500;
    while (!st.stopped) {
      onState('connecting');
      st.controller = new AbortController();
      try {
        const headers = { Accept: 'text/event-stream', ...who.headers() };
        if (st.lastId) headers['Last-Event-ID'] = st.lastId;
        const r = await fetch(`${ROOT}/events${query}`, { headers, signal: st.controller.signal,
          cache: 'no-store' });
        if (!r.ok) throw new Error(`events: ${r.status}`);
        wait = 500;
        const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += value.replace(/\r\n?/g, '\n');
          let cut;
          while ((cut = buffer.indexOf('\n\n')) >= 0) {
            const block = buffer.slice(0, cut);
            buffer = buffer.slice(cut + 2);
            if (block.trim()) dispatch(block);
          }
        }
      } catch (e) {
        if (st.stopped) return;
        onState('down');
        await new Promise((done) => setTimeout(done, wait));
        wait = Math.min(wait * 2, 15000);
      }
    }
  }

  st.stop = () => { st.stopped = true; if (st.controller) st.controller.abort(); };
  st.restart = () => { if (st.controller) st.controller.abort(); };  // e.g. signed in anew
  run();
  return st;
}
