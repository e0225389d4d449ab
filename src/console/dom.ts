/**
 * Building the page without HTML strings: every element is created and every text set through
 * the DOM, so nothing the API returns can become markup (the CSP also demands Trusted Types
 * for the HTML sinks, which this code never uses).
 */

export type Child = Node | string | number | null | undefined | false | Child[]
type AttrValue = string | number | boolean | null | undefined
export type Attrs = Record<string, AttrValue | ((event: Event) => void)>

export function append(parent: Node, children: Child[]): void {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue
    if (Array.isArray(child)) append(parent, child)
    else parent.appendChild(typeof child === 'object' ? child : document.createTextNode(String(child)))
  }
}

/** `h('button', { type: 'button', onclick: go }, 'Go')`: attributes, `on…` listeners, children. */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs?: Attrs | null,
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag)
  for (const [name, value] of Object.entries(attrs ?? {})) {
    if (typeof value === 'function') element.addEventListener(name.slice(2), value)
    else if (value === true) element.setAttribute(name, '')
    else if (value !== null && value !== undefined && value !== false)
      element.setAttribute(name, String(value))
  }
  append(element, children)
  return element
}

export function clear(element: Element, ...children: Child[]): void {
  element.replaceChildren()
  append(element, children)
}

let ids = 0
export const uid = (prefix: string): string => `${prefix}-${++ids}`

/** A labelled form control with an optional hint, wired with `for` and `aria-describedby`. */
export function field(
  label: string,
  control: HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement,
  hint?: string,
): HTMLDivElement {
  control.id ||= uid('field')
  const hintElement = hint ? h('p', { class: 'hint', id: uid('hint') }, hint) : null
  if (hintElement) control.setAttribute('aria-describedby', hintElement.id)
  return h('div', { class: 'field' }, h('label', { for: control.id }, label), control, hintElement)
}

export function input(attrs: Attrs): HTMLInputElement {
  return h('input', { type: 'text', ...attrs })
}

export function select(
  name: string,
  options: [value: string, label: string][],
  value = '',
): HTMLSelectElement {
  const element = h('select', { name }, ...options.map(([v, label]) => h('option', { value: v }, label)))
  element.value = value
  return element
}

export function button(label: Child, onclick: (event: Event) => void, attrs: Attrs = {}): HTMLButtonElement {
  return h('button', { type: 'button', ...attrs, onclick }, label)
}

/** A message area: `role="alert"` for errors (read at once), `role="status"` for results. */
export function messageArea(kind: 'alert' | 'status' = 'alert') {
  const element = h('p', { class: kind === 'alert' ? 'message error' : 'message ok', role: kind })
  element.hidden = true
  return {
    element,
    show(text: string | null) {
      element.textContent = text ?? ''
      element.hidden = !text
    },
  }
}

/** A form that disables itself while `submit` runs and shows its failure. */
export function form(
  attrs: Attrs,
  children: Child[],
  submit: (data: FormData, form: HTMLFormElement) => Promise<void>,
): HTMLFormElement {
  const error = messageArea('alert')
  const element = h('form', attrs, ...children, error.element)
  element.addEventListener('submit', async (event) => {
    event.preventDefault()
    error.show(null)
    // Only what was enabled, and is enabled again after: a button disabled on purpose stays so.
    const controls = Array.from(element.querySelectorAll<HTMLButtonElement>('button')).filter(
      (b) => !b.disabled,
    )
    for (const control of controls) control.disabled = true
    element.setAttribute('aria-busy', 'true')
    try {
      await submit(new FormData(element), element)
    } catch (failure) {
      error.show(failure instanceof Error ? failure.message : String(failure))
    } finally {
      element.removeAttribute('aria-busy')
      for (const control of controls) control.disabled = false
    }
  })
  return element
}

/** A `<time>` with the exact value in `datetime` and a local, readable text. */
export function time(iso: string | null | undefined): Child {
  if (!iso) return '—'
  const date = new Date(iso)
  return h('time', { datetime: iso, title: iso }, date.toLocaleString())
}

export function relativeTime(iso: string): string {
  const seconds = Math.round((Date.now() - new Date(iso).getTime()) / 1000)
  const abs = Math.abs(seconds)
  const format = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' })
  if (abs < 60) return format.format(-seconds, 'second')
  if (abs < 3600) return format.format(-Math.round(seconds / 60), 'minute')
  if (abs < 86_400) return format.format(-Math.round(seconds / 3600), 'hour')
  return format.format(-Math.round(seconds / 86_400), 'day')
}

/** A compact, readable device name from a user agent ("Chrome on Linux"); the full text stays in a title. */
export function deviceOf(userAgent: string | null): string {
  if (!userAgent) return 'Unknown device'
  const browser =
    [
      [/Edg\//, 'Edge'],
      [/OPR\//, 'Opera'],
      [/Firefox\//, 'Firefox'],
      [/(Headless)?Chrome\//, 'Chrome'],
      [/Safari\//, 'Safari'],
      [/curl\//, 'curl'],
      [/node|undici/i, 'Node.js'],
    ].find(([pattern]) => (pattern as RegExp).test(userAgent))?.[1] ?? null
  const system =
    [
      [/Android/, 'Android'],
      [/iPhone|iPad/, 'iOS'],
      [/Windows/, 'Windows'],
      [/Mac OS X|Macintosh/, 'macOS'],
      [/CrOS/, 'ChromeOS'],
      [/Linux/, 'Linux'],
    ].find(([pattern]) => (pattern as RegExp).test(userAgent))?.[1] ?? null
  if (browser && system) return `${browser} on ${system}`
  return (browser as string | null) ?? (system as string | null) ?? userAgent.slice(0, 40)
}

/** Saves text as a file through a temporary object URL (no third party, no server round trip). */
export function download(filename: string, text: string, type = 'text/plain'): void {
  const url = URL.createObjectURL(new Blob([text], { type }))
  const link = h('a', { href: url, download: filename })
  link.hidden = true
  document.body.append(link)
  link.click()
  link.remove()
  setTimeout(() => URL.revokeObjectURL(url), 10_000)
}

export function badge(text: string, kind: 'ok' | 'warn' | 'bad' | 'info' = 'info'): HTMLSpanElement {
  return h('span', { class: `badge badge-${kind}` }, text)
}
