// Notifications on a desk page: the live indicator, toasts for the events a user subscribed
// to, the bell with its count and the list of the latest ones.
import { t } from '../i18n.js';
import { $, data, esc, eventText, toast } from './ui.js';

export function setLive(state) {
  $('live').dataset.state = state;
  $('live-text').textContent = t(`notify.${state === 'live' ? 'connected' : state === 'down' ? 'disconnected' : 'connecting'}`);
}

// ``open(caseId)`` shows a case (from a toast or the list).
export function notices(open) {
  const st = { unread: 0, list: [] };
  const render = () => {
    $('notices').innerHTML = `<h4>${esc(t('notify.title'))}</h4>` + (st.list.length
      ? `<ol>${st.list.map((n) => `<li data-case="${n.case_id}"><b>${esc(n.title)}</b><br>${esc(n.detail)}</li>`).join('')}</ol>`
      : `<p class="muted">${esc(t('notify.none'))}</p>`);
  };
  $('bell').onclick = () => {
    st.unread = 0;
    $('bell-count').hidden = true;
    $('notices').hidden = !$('notices').hidden;
    render();
  };
  $('notices').onclick = (ev) => {
    const li = ev.target.closest('[data-case]');
    if (li) { $('notices').hidden = true; open(Number(li.dataset.case)); }
  };
  return (e) => {
    st.unread += 1;
    $('bell-count').hidden = false;
    $('bell-count').textContent = st.unread;
    const { title, detail } = eventText(e);
    st.list = [{ case_id: e.case_id, title, detail }, ...st.list].slice(0, 20);
    toast(`<b>${esc(title.split(' · ')[0])}</b> ${data(e.public_no || e.case_id)}<br>${esc(detail)}`,
      { kind: e.kind, onClick: () => open(e.case_id) });
  };
}

// A form's own check of its required fields, in the page's language (the browser's bubble
// speaks the browser's): false, with the message shown, when one is empty.
export function filled(form, messageKey) {
  const empty = [...form.querySelectorAll('[required]')].find((el) => !el.value.trim());
  if (!empty) return true;
  form.querySelector('.error').textContent = t(messageKey, { field: empty.closest('label')?.firstChild?.textContent?.trim() || '' });
  empty.focus();
  return false;
}
