import { describe, expect, it } from 'vitest';
import { resolveScriptUser, ScriptUserError } from '../../src/executor/script-user.ts';

const PASSWD = `root:x:0:0:root:/root:/bin/bash
# a comment
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
runner:x:1001:1002::/home/runner:/bin/bash
`;

describe('resolveScriptUser', () => {
  it('a service not running as root runs scripts as itself', () => {
    expect(resolveScriptUser('nobody', 1000, () => PASSWD)).toBeUndefined();
  });

  it('a root service runs scripts as the named user, with its ids and home', () => {
    expect(resolveScriptUser('nobody', 0, () => PASSWD)).toEqual({ name: 'nobody', uid: 65534, gid: 65534, home: '/nonexistent' });
    expect(resolveScriptUser('runner', 0, () => PASSWD)).toEqual({ name: 'runner', uid: 1001, gid: 1002, home: '/home/runner' });
  });

  it('takes a uid or uid:gid', () => {
    expect(resolveScriptUser('1001', 0, () => PASSWD)).toMatchObject({ uid: 1001, gid: 1002, name: 'runner' });
    expect(resolveScriptUser('4242:4243', 0, () => PASSWD)).toMatchObject({ uid: 4242, gid: 4243, name: '4242' });
  });

  it('says what to do about an unknown user', () => {
    expect(() => resolveScriptUser('ghost', 0, () => PASSWD)).toThrow(ScriptUserError);
    expect(() => resolveScriptUser('ghost', 0, () => PASSWD)).toThrow(/SCRIPT_USER=ghost is not a user on this machine/);
  });

  it('root only when asked for by name: then scripts run as the service itself', () => {
    expect(resolveScriptUser('root', 0, () => PASSWD)).toBeUndefined();
    expect(resolveScriptUser('0:0', 0, () => PASSWD)).toBeUndefined();
  });
});
