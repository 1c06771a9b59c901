/**
 * A script attempt's output file, `$DAGPIPE_OUTPUT` (SPEC rule 18). The launcher creates it
 * empty, owned by the user the script runs as, before the script starts, and reads it once
 * the script exited 0: at most MAX_OUTPUT_BYTES of it (a script may write gigabytes), and
 * only while it is still a plain file of that user. The launcher may run as root and the
 * working directory is the script's: a script could put a link to a file only root may
 * read in the file's place, and its contents must not come back as outputs.
 */
import { closeSync, constants, fchmodSync, fchownSync, fstatSync, openSync, readSync } from 'node:fs';
import { MAX_OUTPUT_BYTES, type OutputFile } from '../engine/outputs.ts';

/** Creates (or empties) the file, writable by `user` when the script runs as another user. */
export function createOutputFile(file: string, user?: { uid: number; gid: number }): void {
  const fd = openSync(file, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_NOFOLLOW, 0o600);
  try {
    fchmodSync(fd, 0o600);
    if (user) fchownSync(fd, user.uid, user.gid);
  } finally {
    closeSync(fd);
  }
}

const decoder = new TextDecoder('utf-8', { fatal: true });

/**
 * What the script left in the file. A file it removed holds no outputs (as on GitHub).
 * @param owner the uid the file must belong to: the script's user.
 */
export function readOutputFile(file: string, owner: number | undefined, limit = MAX_OUTPUT_BYTES): OutputFile {
  let fd: number;
  try {
    // O_NONBLOCK: a FIFO in the file's place must not hang the launcher on open.
    fd = openSync(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return { text: '' };
    if (code === 'ELOOP') return { problem: 'the script put a symbolic link in its place, which is not followed. Write to the file itself.' };
    return { problem: `it could not be opened (${code ?? (error as Error).message}).` };
  }
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile()) return { problem: 'the script put something other than a plain file in its place. Write to the file itself.' };
    if (owner !== undefined && stat.uid !== owner) {
      return { problem: "the script put another user's file in its place. Write to the file itself." };
    }
    if (stat.size > limit) return { tooLarge: stat.size };
    const buffer = Buffer.alloc(limit + 1);
    let read = 0;
    while (read < buffer.length) {
      const n = readSync(fd, buffer, read, buffer.length - read, read);
      if (n === 0) break;
      read += n;
    }
    // Still growing (a process the script left behind writes on): what was there is too much.
    if (read > limit) return { tooLarge: Math.max(read, stat.size) };
    try {
      return { text: decoder.decode(buffer.subarray(0, read)) };
    } catch {
      return { problem: 'it is not UTF-8 text. Write binary data to a file and pass its path as an output.' };
    }
  } finally {
    closeSync(fd);
  }
}
