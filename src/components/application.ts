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
  /**
   * Makes it a template: each variable, used as {{name}} in any string of its
   * name, description and components, with its type (text, table, column,
   * model, integer, number, boolean), default and description.
   */
  variables?: Record<string, TemplateVariable>;
  /** The variables' values (the defaults otherwise). */
  values?: Record<string, unknown>;
}

export interface TemplateVariable {
  type?: 'text' | 'table' | 'column' | 'model' | 'integer' | 'number' | 'boolean';
  default?: unknown;
  description?: string;
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
      ...(options.variables !== undefined ? { variables: options.variables } : {}),
      ...(options.values !== undefined ? { values: options.values } : {}),
      components: children.map((child) => (isComponent(child) ? child.spec : child)),
    },
    children,
  };
}
