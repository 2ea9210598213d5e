/**
 * Label selectors (k8s.io/apimachinery/pkg/labels) and field selectors (…/pkg/fields) as the
 * apiserver parses them from `labelSelector` / `fieldSelector` query parameters.
 */
import { badRequest } from './errors.js';
import { isQualifiedName, isValidLabelValue } from './util.js';

export type LabelOp = 'exists' | '!' | '=' | '==' | '!=' | 'in' | 'notin' | 'gt' | 'lt';

export interface LabelRequirement {
  key: string;
  op: LabelOp;
  values: string[];
}

export type LabelSelector = LabelRequirement[];

type Tok = { t: 'id' | '!' | '=' | '==' | '!=' | '(' | ')' | ',' | '>' | '<' | 'end'; v: string };

function lex(s: string): Tok[] {
  const toks: Tok[] = [];
  let i = 0;
  const special = ' \t\r\n!=(),<>';
  while (i < s.length) {
    const c = s[i];
    if (c === ' ' || c === '\t' || c === '\r' || c === '\n') {
      i++;
      continue;
    }
    if (c === '!' && s[i + 1] === '=') {
      toks.push({ t: '!=', v: '!=' });
      i += 2;
    } else if (c === '=' && s[i + 1] === '=') {
      toks.push({ t: '==', v: '==' });
      i += 2;
    } else if ('!=(),<>'.includes(c)) {
      toks.push({ t: c as Tok['t'], v: c });
      i++;
    } else {
      let j = i;
      while (j < s.length && !special.includes(s[j])) j++;
      toks.push({ t: 'id', v: s.slice(i, j) });
      i = j;
    }
  }
  toks.push({ t: 'end', v: '' });
  return toks;
}

function describe(t: Tok): string {
  return t.t === 'end' ? 'end of string' : t.v;
}

/** labels.Parse. Throws a 400 BadRequest ApiError on a malformed selector. */
export function parseLabelSelector(s: string): LabelSelector {
  const toks = lex(s);
  let p = 0;
  const reqs: LabelSelector = [];
  if (toks[0].t === 'end') return reqs;
  const fail = (m: string): never => {
    throw badRequest(`unable to parse requirement: ${m}`);
  };
  const syntax = (m: string): never => {
    throw badRequest(m);
  };
  for (;;) {
    let negate = false;
    if (toks[p].t === '!') {
      negate = true;
      p++;
    }
    const keyTok = toks[p];
    if (keyTok.t !== 'id') syntax(`found '${describe(keyTok)}', expected: !, identifier, or 'end of string'`);
    const key = keyTok.v;
    p++;
    const keyErrs = isQualifiedName(key);
    if (keyErrs.length) fail(`key: Invalid value: ${JSON.stringify(key)}: ${keyErrs.join('; ')}`);
    let req: LabelRequirement;
    const next = toks[p];
    if (negate) {
      req = { key, op: '!', values: [] };
    } else if (next.t === ',' || next.t === 'end') {
      req = { key, op: 'exists', values: [] };
    } else if (next.t === 'id' && (next.v === 'in' || next.v === 'notin')) {
      p++;
      if (toks[p].t !== '(') syntax(`found '${describe(toks[p])}', expected: '('`);
      p++;
      const values: string[] = [];
      if (toks[p].t === ')') {
        p++;
      } else {
        for (;;) {
          if (toks[p].t === 'id') {
            values.push(toks[p].v);
            p++;
          } else if (toks[p].t === ',' || toks[p].t === ')') {
            values.push(''); // an empty value between commas is an empty string, as in labels.Parse
          } else syntax(`found '${describe(toks[p])}', expected: ',', ')' or identifier`);
          if (toks[p].t === ',') {
            p++;
            continue;
          }
          if (toks[p].t === ')') {
            p++;
            break;
          }
          syntax(`found '${describe(toks[p])}', expected: ',' or ')'`);
        }
      }
      if (values.length === 0) fail("for 'in', 'notin' operators, values set can't be empty");
      req = { key, op: next.v as LabelOp, values };
    } else if (next.t === '=' || next.t === '==' || next.t === '!=' || next.t === '>' || next.t === '<') {
      p++;
      let value = '';
      if (toks[p].t === 'id') {
        value = toks[p].v;
        p++;
      } else if (toks[p].t !== ',' && toks[p].t !== 'end') {
        syntax(`found '${describe(toks[p])}', expected: identifier`);
      }
      const op: LabelOp = next.t === '>' ? 'gt' : next.t === '<' ? 'lt' : (next.t as LabelOp);
      if ((op === 'gt' || op === 'lt') && !/^-?[0-9]+$/.test(value))
        fail(`for 'Gt', 'Lt' operators, the value must be an integer`);
      req = { key, op, values: [value] };
    } else {
      syntax(`found '${describe(next)}', expected: in, notin, =, ==, !=, gt, lt`);
      throw new Error('unreachable');
    }
    if (req.op !== 'gt' && req.op !== 'lt')
      for (let i = 0; i < req.values.length; i++) {
        const ve = isValidLabelValue(req.values[i]);
        if (ve.length) fail(`values[${i}][${key}]: Invalid value: ${JSON.stringify(req.values[i])}: ${ve.join('; ')}`);
      }
    reqs.push(req);
    if (toks[p].t === 'end') break;
    if (toks[p].t !== ',') syntax(`found '${describe(toks[p])}', expected: ',' or 'end of string'`);
    p++;
  }
  return reqs;
}

export function matchLabels(sel: LabelSelector, labels: Record<string, string> | undefined): boolean {
  const l = labels ?? {};
  for (const r of sel) {
    const has = Object.prototype.hasOwnProperty.call(l, r.key);
    const v = has ? l[r.key] : undefined;
    switch (r.op) {
      case 'exists':
        if (!has) return false;
        break;
      case '!':
        if (has) return false;
        break;
      case '=':
      case '==':
      case 'in':
        if (!has || !r.values.includes(v as string)) return false;
        break;
      case '!=':
      case 'notin':
        if (has && r.values.includes(v as string)) return false;
        break;
      case 'gt':
      case 'lt': {
        if (!has || !/^-?[0-9]+$/.test(v as string)) return false;
        const a = Number(v);
        const b = Number(r.values[0]);
        if (r.op === 'gt' ? !(a > b) : !(a < b)) return false;
        break;
      }
    }
  }
  return true;
}

// ---------------------------------------------------------------------------------------------

export interface FieldRequirement {
  field: string;
  op: '=' | '!=';
  value: string;
}

export type FieldSelector = FieldRequirement[];

function splitUnescaped(s: string, sep: string): string[] {
  const out: string[] = [];
  let cur = '';
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === '\\' && i + 1 < s.length) {
      cur += c + s[i + 1];
      i++;
    } else if (c === sep) {
      out.push(cur);
      cur = '';
    } else cur += c;
  }
  out.push(cur);
  return out;
}

function unescapeFieldValue(v: string): string {
  let out = '';
  for (let i = 0; i < v.length; i++) {
    if (v[i] === '\\') {
      const n = v[i + 1];
      if (n === '\\' || n === ',' || n === '=') {
        out += n;
        i++;
        continue;
      }
      throw badRequest(`invalid field selector: invalid escape sequence: \\${n ?? ''}`);
    }
    if (v[i] === ',' || v[i] === '=') throw badRequest(`invalid field selector: unescaped ${v[i]}`);
    out += v[i];
  }
  return out;
}

/** fields.ParseSelector. Throws 400 on syntax errors. */
export function parseFieldSelector(s: string): FieldSelector {
  const reqs: FieldSelector = [];
  if (s.trim() === '') return reqs;
  for (const term of splitUnescaped(s, ',')) {
    if (term === '') continue;
    let idx = -1;
    let op: '=' | '!=' = '=';
    let oplen = 1;
    for (let i = 0; i < term.length; i++) {
      if (term[i] === '\\') {
        i++;
        continue;
      }
      if (term.startsWith('!=', i)) {
        idx = i;
        op = '!=';
        oplen = 2;
        break;
      }
      if (term.startsWith('==', i)) {
        idx = i;
        oplen = 2;
        break;
      }
      if (term[i] === '=') {
        idx = i;
        oplen = 1;
        break;
      }
    }
    if (idx < 0) throw badRequest(`invalid selector: '${s}'; can't understand '${term}'`);
    reqs.push({ field: term.slice(0, idx).trim(), op, value: unescapeFieldValue(term.slice(idx + oplen)) });
  }
  return reqs;
}

export function matchFields(sel: FieldSelector, fields: Record<string, string>): boolean {
  for (const r of sel) {
    const v = fields[r.field] ?? '';
    if (r.op === '=' ? v !== r.value : v === r.value) return false;
  }
  return true;
}
