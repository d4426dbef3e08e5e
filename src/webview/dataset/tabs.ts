import { DATASET_TABS, type DatasetDom, type DatasetTab } from './dom';

/**
 * The dataset view's tab bar. The table tab is always there; another feature's tab (Duplicates, Map) is shown
 * once that feature has mounted into its panel with {@link TabBar.enable}, so a view never offers an empty tab.
 * Listeners learn of a switch so a hidden canvas can stop drawing and a shown one can size itself.
 */
export class TabBar {
  private current: DatasetTab = 'table';
  private readonly listeners: Array<(tab: DatasetTab) => void> = [];

  constructor(private readonly dom: Pick<DatasetDom, 'tabs' | 'panels'>) {
    for (const tab of DATASET_TABS) dom.tabs[tab].addEventListener('click', () => this.select(tab));
    dom.tabs.table.parentElement?.addEventListener('keydown', (event) => this.onKey(event));
  }

  get selected(): DatasetTab {
    return this.current;
  }

  enable(tab: DatasetTab): void {
    this.dom.tabs[tab].hidden = false;
  }

  onChange(listener: (tab: DatasetTab) => void): void {
    this.listeners.push(listener);
  }

  select(tab: DatasetTab): void {
    if (this.dom.tabs[tab].hidden) return;
    this.current = tab;
    for (const t of DATASET_TABS) {
      this.dom.tabs[t].setAttribute('aria-selected', String(t === tab));
      this.dom.tabs[t].tabIndex = t === tab ? 0 : -1;
      this.dom.panels[t].hidden = t !== tab;
    }
    for (const listener of this.listeners) listener(tab);
  }

  /** Arrow keys move between the visible tabs, as the WAI-ARIA tabs pattern has it. */
  private onKey(event: KeyboardEvent): void {
    if (event.key !== 'ArrowLeft' && event.key !== 'ArrowRight') return;
    const visible = DATASET_TABS.filter((t) => !this.dom.tabs[t].hidden);
    const at = visible.indexOf(this.current);
    const next = visible[(at + (event.key === 'ArrowRight' ? 1 : visible.length - 1)) % visible.length];
    this.select(next);
    this.dom.tabs[next].focus();
    event.preventDefault();
  }
}
