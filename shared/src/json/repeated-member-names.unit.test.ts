import { describe, expect, it } from 'vitest';
import { repeatedMemberName, repeatedMemberNames } from './repeated-member-names.js';

describe('repeatedMemberName', () => {
  it('names a member named twice in the top-level object', () => {
    expect(repeatedMemberName('{"name":"a","name":"b"}')).toEqual(['name']);
  });

  it('names a member repeated in a nested object by its path', () => {
    const text = '{"routes":[{"path":"/a"},{"path":"/b","cors":{"allow_origins":["x"],"allow_origins":[]}}]}';
    expect(repeatedMemberName(text)).toEqual(['routes', 1, 'cors', 'allow_origins']);
  });

  it('counts names equal once unescaped as the same name', () => {
    expect(repeatedMemberName('{"a":1,"\\u0061":2}')).toEqual(['a']);
    expect(repeatedMemberName('{"\\"q":1,"\\u0022q":2}')).toEqual(['"q']);
    expect(repeatedMemberName('{"\\ud83d\\ude00":1,"😀":2}')).toEqual(['😀']);
  });

  it('finds a repetition inside arrays of objects, after whitespace of any kind', () => {
    expect(repeatedMemberName('[ 1, [ {"x" : 1} ] ,\n\t{ "y" :\r\n2 , "y":3} ]')).toEqual([2, 'y']);
  });

  it('finds a name repeated far apart in an object of many members', () => {
    const members = Array.from({ length: 40 }, (_, index) => `"m${index}":${index}`);
    expect(repeatedMemberName(`{${members.join(',')}}`)).toBeUndefined();
    expect(repeatedMemberName(`{${members.join(',')},"m3":0}`)).toEqual(['m3']);
    expect(repeatedMemberName(`{${members.join(',')},"m39":0}`)).toEqual(['m39']);
  });

  it('takes the same name in different objects, and in string values, as no repetition', () => {
    const text =
      '{"a":{"a":1},"b":[{"a":1},{"a":1}],"c":"a","d":["a","a"],"e":{"x":"\\"a\\":1,\\"a\\":2"},"f":{}}';
    expect(repeatedMemberName(text)).toBeUndefined();
    expect(repeatedMemberName('"x"')).toBeUndefined();
    expect(repeatedMemberName('[]')).toBeUndefined();
  });

  it('tells names apart that differ only in letter case or in an escape that is kept', () => {
    expect(repeatedMemberName('{"a":1,"A":2,"a\\\\":3,"a\\\\\\\\":4}')).toBeUndefined();
  });

  it('finds the repetition an object under a string holding braces and quotes has', () => {
    expect(repeatedMemberName('{"s":"{\\"}[,","t":{"u":1,"u":2}}')).toEqual(['t', 'u']);
  });

  it('answers without a finding, and without throwing, for text that is not JSON', () => {
    for (const text of ['{"a":1,"a', '}}{"a":1,"a":2', '{"\\u00zz":1,"\\u00zz":2}', '', '"']) {
      expect(() => repeatedMemberName(text)).not.toThrow();
    }
    expect(repeatedMemberName('{"a":1,"a')).toBeUndefined();
  });

  it('walks nesting far deeper than the call stack could', () => {
    const deep = `${'{"a":'.repeat(20_000)}{"b":1,"b":2}${'}'.repeat(20_000)}`;
    expect(repeatedMemberName(deep)).toHaveLength(20_001);
  });

  it('lists every repetition in document order, as many as asked for', () => {
    const text = '{"a":[{"k":1,"k":2},{"k":1}],"a":{"x":1,"y":2,"x":3,"x":4}}';
    expect(repeatedMemberNames(text)).toEqual([['a', 0, 'k'], ['a'], ['a', 'x'], ['a', 'x']]);
    expect(repeatedMemberNames(text, 2)).toEqual([['a', 0, 'k'], ['a']]);
    expect(repeatedMemberNames('{"a":1}')).toEqual([]);
  });
});
