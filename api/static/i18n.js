// The pages' half of the message catalogue (api/i18n): the server renders the page in the
// caller's language (<html lang>); scripts fetch the same catalogue once and call t().
const ROOT = document.documentElement.dataset.root || '';
export let LANG = document.documentElement.lang || 'zh-CN';
let messages = {};

// A page that switches language without reloading (the phone app, which may be offline)
// changes the language here and loads the messages again.
export function useLanguage(lang) {
  LANG = lang;
  messages = {};
  document.documentElement.lang = lang;
}

// Messages a page already carries (a data block rendered with it: one request less).
export function addMessages(more) {
  messages = { ...messages, ...more };
}

export async function loadMessages(namespaces = []) {
  const q = namespaces.length ? `?ns=${encodeURIComponent(namespaces.join(','))}` : '';
  const r = await fetch(`${ROOT}/i18n/${LANG}.json${q}`, { headers: { Accept: 'application/json' } });
  if (!r.ok) throw new Error(`messages ${LANG}: ${r.status}`);
  // read first, merge after: two loads at once (a page and its modules) must both stay
  const more = (await r.json()).messages;
  messages = { ...messages, ...more };
  return messages;
}

// The message `key` with {placeholders} filled in; the key itself when it is missing (visible
// in the page and caught by the language test, never silently blank).
// A message whose words agree with its count {n} (or {count}) may have plural variants keyed
// `<key>@<CLDR category>` ("time.days@one": "{n} day"); the server picks them the same way.
const pluralRules = {};
function pluralVariant(key, values) {
  const count = values.n ?? values.count;
  if (count === undefined || count === null || count === '' || typeof count === 'boolean') return undefined;
  const number = Number(count);
  if (Number.isNaN(number)) return undefined;
  pluralRules[LANG] ??= new Intl.PluralRules(LANG);
  return messages[`${key}@${pluralRules[LANG].select(number)}`];
}

export function t(key, values = {}) {
  const base = messages[key];
  if (base === undefined) return key;
  const text = pluralVariant(key, values) ?? base;
  return text.replace(/\{(\w+)\}/g, (m, name) => (name in values ? String(values[name]) : m));
}

// One time format everywhere: the city's wall clock with its offset, "2026-12-06 17:30 +08:00".
export function cityTime(iso, timeZone = 'Asia/Shanghai', withSeconds = false) {
  if (!iso) return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  const parts = Object.fromEntries(new Intl.DateTimeFormat('en-CA', {
    timeZone, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit',
    minute: '2-digit', second: '2-digit', hourCycle: 'h23',
  }).formatToParts(d).map((p) => [p.type, p.value]));
  const wall = Date.UTC(+parts.year, +parts.month - 1, +parts.day, +parts.hour, +parts.minute, +parts.second);
  const offsetMin = Math.round((wall - Math.floor(d.getTime() / 1000) * 1000) / 60000);
  const sign = offsetMin < 0 ? '-' : '+';
  const abs = Math.abs(offsetMin);
  const offset = `${sign}${String(Math.floor(abs / 60)).padStart(2, '0')}:${String(abs % 60).padStart(2, '0')}`;
  const time = `${parts.hour}:${parts.minute}${withSeconds ? `:${parts.second}` : ''}`;
  return `${parts.year}-${parts.month}-${parts.day} ${time} ${offset}`;
}
