import type { ComponentChildren, FunctionComponent, VNode } from 'preact';

/**
 * The text a component's output shows, flat and in order, for unit tests without a DOM: strings and
 * numbers as they are, function components (Fragment included; hook-free ones only) rendered on the way.
 */
export function renderedText(node: ComponentChildren): string {
  if (node === null || node === undefined || typeof node === 'boolean') return '';
  if (typeof node === 'string' || typeof node === 'number' || typeof node === 'bigint') return String(node);
  if (Array.isArray(node)) return node.map(renderedText).join('');
  const vnode = node as VNode<{ children?: ComponentChildren }>;
  if (typeof vnode.type === 'function') {
    return renderedText(
      (vnode.type as FunctionComponent<typeof vnode.props>)(vnode.props) as ComponentChildren,
    );
  }
  return renderedText(vnode.props.children);
}
