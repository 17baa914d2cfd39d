// The map page on a phone (below 700 px, map.css): the queue and the map take turns over the
// screen below the top bar, switched by two tabs (#views); stacked, the map and the panels left
// the queue about one row. The case drawer lies over the map, so whatever opens it (a queue row,
// a toast, a search hit, the 待定位 list) shows the map view, and closing it goes back to the
// view the dispatcher was on. Wider, both are side by side and the tabs are not shown; the
// view is still kept, so a window narrowed later shows the right one.
import { $ } from '../common/ui.js';

const st = { back: null };

export function currentView() {
  return document.querySelector('.workspace').dataset.view;
}

export function showView(name) {
  document.querySelector('.workspace').dataset.view = name;
  for (const tab of document.querySelectorAll('#views [data-view]')) {
    const on = tab.dataset.view === name;
    tab.setAttribute('aria-selected', String(on));
    tab.tabIndex = on ? 0 : -1;
  }
}

// The drawer opened (again): the map view, remembering where the dispatcher came from.
export function drawerShown() {
  if (st.back === null) st.back = currentView();
  showView('map');
}

function drawerHidden() {
  if (st.back === null) return;
  const back = st.back;
  st.back = null;
  showView(back);
}

export function wireViews() {
  const tabs = $('views');
  tabs.onclick = (ev) => {
    const tab = ev.target.closest('[data-view]');
    if (!tab) return;
    st.back = null;  // chosen by hand: closing the drawer later stays here
    showView(tab.dataset.view);
  };
  tabs.onkeydown = (ev) => {  // the arrow keys move between the two tabs, as in any tab list
    if (ev.key !== 'ArrowLeft' && ev.key !== 'ArrowRight') return;
    const other = currentView() === 'queue' ? 'map' : 'queue';
    st.back = null;
    showView(other);
    $(`view-${other}`).focus();
  };
  // The drawer is opened and closed by several modules (case and grid panels, the 待定位
  // picker): its hidden attribute is the one place that says so.
  const drawer = $('drawer');
  new MutationObserver(() => { if (drawer.hidden) drawerHidden(); else drawerShown(); })
    .observe(drawer, { attributes: true, attributeFilter: ['hidden'] });
}

// How many cases the chosen bucket holds, on the queue's tab.
export function showQueueCount(n) {
  const badge = $('view-queue-count');
  if (!badge) return;
  badge.textContent = n == null ? '' : String(n);
  badge.hidden = n == null;
}
