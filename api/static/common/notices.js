// Notifications on a desk page: the live indicator, toasts for the events a user subscribed
// to, the bell with its count and the list of the latest ones.
import { t } from '../i18n.js';
import { api, who } from './api.js';
import { $, data, esc, eventText, kindName, toast } from './ui.js';

export function setLive(state) {
  $('live').dataset.state = state;
  $('live-text').textContent = t(`notify.${state === 'live' ? 'connected' : state === 'down' ? 'disconnected' : 'connecting'}`);
}

// What a signed-in user is told of (area × class × kind): GET/PUT/DELETE /me/subscriptions.
async function subscriptionForm(box) {
  if (!who.token) return;
  const sub = await api('/me/subscriptions').catch(() => null);
  if (!sub) return;
  const kinds = sub.kinds_available.map((k) => `<label class="kind"><input type="checkbox" name="kinds" value="${esc(k)}"
    ${sub.kinds.includes(k) ? 'checked' : ''}> ${esc(kindName(k))}</label>`).join('');
  box.insertAdjacentHTML('beforeend', `<form id="subscription" class="subscription"><h4>${esc(t('notify.settings'))}</h4>
    <div class="kinds">${kinds}</div>
    <label>${esc(t('notify.areas'))} <input name="areas" value="${esc(sub.areas.join(','))}" placeholder="${esc(t('notify.areas_hint'))}" translate="no"></label>
    <label>${esc(t('notify.categories'))} <input name="categories" value="${esc(sub.categories.join(','))}" placeholder="${esc(t('notify.categories_hint'))}" translate="no"></label>
    <div class="buttons"><button type="submit">${esc(t('notify.save'))}</button>
      <button type="button" class="secondary" id="subscription-reset">${esc(t('notify.reset'))}</button></div>
    <p class="error" role="alert"></p></form>`);
  const form = $('subscription');
  const split = (v) => String(v || '').split(',').map((x) => x.trim()).filter(Boolean);
  form.onsubmit = async (ev) => {
    ev.preventDefault();
    const data_ = new FormData(form);
    try {
      await api('/me/subscriptions', { method: 'PUT', json: { kinds: data_.getAll('kinds'),
        areas: split(data_.get('areas')), categories: split(data_.get('categories')) } });
      form.querySelector('.error').textContent = t('notify.saved');
    } catch (e) { form.querySelector('.error').textContent = e.message; }
  };
  $('subscription-reset').onclick = async () => {
    await api('/me/subscriptions', { method: 'DELETE' }).catch(() => null);
    form.remove();
    subscriptionForm(box);
  };
}

// ``open(caseId)`` shows a case (from a toast or the list).
export function notices(open) {
  const st = { unread: 0, list: [] };
  const render = () => {
    $('notices').innerHTML = `<h4>${esc(t('notify.title'))}</h4>` + (st.list.length
      ? `<ol>${st.list.map((n) => `<li data-case="${n.case_id}"><b>${esc(n.title)}</b><br>${esc(n.detail)}</li>`).join('')}</ol>`
      : `<p class="muted">${esc(t('notify.none'))}</p>`);
    subscriptionForm($('notices'));
  };
  $('bell').onclick = () => {
    st.unread = 0;
    $('bell-count').hidden = true;
    $('notices').hidden = !$('notices').hidden;
    render();
  };
  $('notices').onclick = (ev) => {
    const li = ev.target.closest('li[data-case]');
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
