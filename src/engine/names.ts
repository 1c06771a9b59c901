/**
 * The rule for parameter names, which step outputs follow too (SPEC rules 5, 18). Its own
 * module, without dependencies: the launcher, which reads output files, stays small. Pure.
 */

/** Parameter names become shell placeholders and INPUT_<NAME> variables. */
const PARAM_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,47}$/;

/** Whether `name` is a valid parameter (or step output) name. */
export function isParamName(name: string): boolean {
  return PARAM_NAME.test(name) && name !== '__proto__';
}
