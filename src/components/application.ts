import { isComponent, type Applicable } from './component.js';

export interface ApplicationOptions {
  name: string;
  /** Shown by the applications view. */
  description?: string;
  /**
   * Its components, each after those it uses (a listener after its model); a
   * model given to a listener as an object is taken in too, before it.
   */
  components: readonly Applicable[];
}

export interface ApplicationComponent {
  readonly kind: 'application';
  readonly name: string;
  readonly spec: Record<string, unknown>;
  /** Its components, in order: their files are stored and their code attached when it is applied. */
  readonly children: readonly Applicable[];
}

/**
 * A named group of components applied, versioned and removed as one
 * (sql/functions/042_applications.sql): applied again, what changed is
 * updated or rebuilt and what it no longer lists is removed; removed, its
 * components go with it, except those another application holds too.
 */
export function application(options: ApplicationOptions): ApplicationComponent {
  const children: Applicable[] = [];
  const seen = new Set<Applicable>();
  const add = (component: Applicable): void => {
    if (seen.has(component)) return;
    seen.add(component);
    if (isComponent(component)) for (const used of component.uses ?? []) add(used);
    children.push(component);
  };
  for (const component of options.components) add(component);
  return {
    kind: 'application',
    name: options.name,
    spec: {
      type: 'application',
      name: options.name,
      ...(options.description !== undefined ? { description: options.description } : {}),
      components: children.map((child) => (isComponent(child) ? child.spec : child)),
    },
    children,
  };
}
