/**
 * Who is signed in, and what their role lets them do. The service decides (every mutation
 * checks the role); the dashboard only hides what would be refused, and says why a button it
 * shows cannot be used now.
 */
import type { ComponentChildren } from 'preact';
import { createContext } from 'preact';
import { useContext } from 'preact/hooks';
import { graphql } from './generated';
import type { Role, ViewerQuery } from './generated/graphql';

export const ViewerDocument = graphql(`
  query Viewer {
    viewer {
      name
      role
    }
  }
`);

export type Viewer = ViewerQuery['viewer'];

const ORDER: Role[] = ['viewer', 'operator', 'admin'];

/** Each role includes the ones before it (src/engine/roles.ts). */
export function allows(role: Role, needed: Role): boolean {
  return ORDER.indexOf(role) >= ORDER.indexOf(needed);
}

export const ViewerContext = createContext<Viewer>({ name: '', role: 'viewer' });

export function useViewer(): Viewer {
  return useContext(ViewerContext);
}

export interface ActionProps {
  /** The least role the mutation needs: the button is not shown to lesser roles. */
  need: 'operator' | 'admin';
  /** Why it cannot be used now (e.g. "The run has ended."): shown beside a disabled button. */
  unavailable?: string | undefined;
  busy?: boolean;
  onClick: () => void;
  children: ComponentChildren;
  /** Distinguishes the reason's id when a page has several buttons of the same name. */
  id: string;
}

export function Action({ need, unavailable, busy, onClick, children, id }: ActionProps) {
  const { role } = useViewer();
  if (!allows(role, need)) return null;
  const reason = unavailable ? `${id}-why` : undefined;
  return (
    <span class="action">
      <button type="button" id={id} disabled={Boolean(unavailable) || busy} aria-describedby={reason} onClick={onClick}>
        {children}
      </button>
      {unavailable && (
        <span id={reason} class="why">
          {unavailable}
        </span>
      )}
    </span>
  );
}
