import { useRef, useState } from 'preact/hooks';
import type { ApiResponse } from '../api/client.js';

/** A resource as read when its editor opened, and that read's ETag (what the save's If-Match names). */
export interface EditedResource<T> {
  resource: T;
  etag: string | null;
}

/**
 * The resource an editor is open on. `open` reads it afresh; a read answering after the user has opened
 * another one (or closed the editor) is dropped instead of replacing the editor, and so is its failure.
 */
export function useEditedResource<T>(onReadFailed: (failure: unknown) => void) {
  const [edited, setEdited] = useState<EditedResource<T> | null>(null);
  // Counts the editor's openings and closings: only the newest opening's read may fill the editor.
  const turn = useRef(0);
  const open = async (read: () => Promise<ApiResponse<T>>) => {
    const opening = ++turn.current;
    try {
      const current = await read();
      if (opening === turn.current) setEdited({ resource: current.body, etag: current.headers.get('etag') });
    } catch (failure) {
      if (opening === turn.current) onReadFailed(failure);
    }
  };
  const close = () => {
    turn.current += 1;
    setEdited(null);
  };
  return { edited, open, close };
}
