import { queryTransform } from '@vantageedge/shared/domain/route-policies';
import { describe, expect, it } from 'vitest';
import type { GatewayExchange } from '../pipeline/exchange.js';
import { compileQueryTransform } from './query-transform.js';

/** The query the origin gets for `query` under a route's query transform. */
function originQuery(transform: unknown, query: string): string {
  const compiled = compileQueryTransform(queryTransform.parse(transform))!;
  return compiled({ query } as GatewayExchange);
}

/**
 * A removed parameter is one the origin must never read, and origins read one name in many spellings:
 * PHP, Rails (Rack) and Express (qs) read `role[]=…` and `role[0]=…` as `role`, PHP reads `user.id` and
 * `user id` as `user_id`, ASP.NET matches names whatever their case, and Go before 1.17, Python before
 * 3.9.2 and Perl's CGI split pairs at `;` as well as `&`.
 */
describe('query remove', () => {
  it('removes every spelling an origin reads as the removed name', () => {
    const spellings = [
      'role=admin',
      'role[]=admin',
      'role[0]=admin',
      'role[x]=admin',
      'role%5B%5D=admin',
      'ro%6Ce=admin',
      'ROLE=admin',
      'Role[]=admin',
      'role=admin&role=root',
    ];
    for (const spelling of spellings) {
      expect(originQuery({ remove: ['role'] }, `?page=2&${spelling}&q=x`), spelling).toBe('?page=2&q=x');
    }
  });

  it('removes the PHP spellings of a name with an underscore', () => {
    for (const spelling of ['user.id=7', 'user+id=7', 'user%20id=7', 'user.id[]=7']) {
      expect(originQuery({ remove: ['user_id'] }, `?${spelling}&a=b`), spelling).toBe('?a=b');
    }
  });

  // PHP reads a name as a C string: `role%00x=admin` reaches the application as $_GET['role'].
  it('removes a name an origin reads up to a NUL byte in it', () => {
    for (const spelling of ['role%00=admin', 'role%00x=admin', 'ROLE%00[]=admin', '+role%00=admin']) {
      expect(originQuery({ remove: ['role'] }, `?page=2&${spelling}&q=x`), spelling).toBe('?page=2&q=x');
    }
    expect(originQuery({ remove: ['role'] }, '?x=1;role%00=admin')).toBe('?x=1');
    expect(originQuery({ set: { source: 'gw' } }, '?source%00=client&a=1')).toBe('?source=gw&a=1');
    // A NUL before the name leaves PHP no name at all: nothing it reads as `role`.
    expect(originQuery({ remove: ['role'] }, '?%00role=admin')).toBe('?%00role=admin');
  });

  // Classic ASP.NET (System.Web) decodes `%uXXXX` in a name: `%u0072ole` and `rol%u0045` are its `role`.
  it('removes a name spelled with %u escapes', () => {
    for (const spelling of ['%u0072ole=admin', 'rol%u0045=admin', '%u0072%u006f%u006c%u0065[]=admin']) {
      expect(originQuery({ remove: ['role'] }, `?page=2&${spelling}&q=x`), spelling).toBe('?page=2&q=x');
    }
    expect(originQuery({ remove: ['role'] }, '?%u0072olex=1&%u72ole=1')).toBe('?%u0072olex=1&%u72ole=1');
  });

  // Classic ASP.NET MVC's model binding reads `user.role` as the `role` of `user`, and its System.Web
  // decodes `%u002e` to that `.` first.
  it('removes a property of a removed name whose `.` is a %u escape', () => {
    const transform = { remove: ['user', 'filter[status]'] };
    for (const spelling of ['user%u002erole=admin', 'User%u002ERole[0]=admin', 'filter%u002estatus=x']) {
      expect(originQuery(transform, `?a=1&${spelling}&b=2`), spelling).toBe('?a=1&b=2');
    }
    // An escape decoded once: `%u0025u002e` is `%u002e` to System.Web, no `.`.
    expect(originQuery(transform, '?users%u002erole=x&user%u0025u002erole=y')).toBe(
      '?users%u002erole=x&user%u0025u002erole=y',
    );
  });

  // Spring MVC's data binding takes `!role` as the value of `role` when `role` is not sent.
  it('removes a name with the `!` of a Spring field default before it', () => {
    for (const spelling of ['!role=admin', '%21role=admin', '!Role[0]=admin']) {
      expect(originQuery({ remove: ['role'] }, `?page=2&${spelling}&q=x`), spelling).toBe('?page=2&q=x');
    }
    expect(originQuery({ remove: ['role'] }, '?!!role=1&role!=1')).toBe('?!!role=1&role!=1');
  });

  it('removes a pair written after a `;` in a piece, keeping the rest of that piece', () => {
    expect(originQuery({ remove: ['role'] }, '?a=1;role=admin&b=2')).toBe('?a=1&b=2');
  });

  it('keeps names that only begin like the removed one', () => {
    expect(originQuery({ remove: ['role'] }, '?roles=a&role_id=b&rolex[]=c')).toBe(
      '?roles=a&role_id=b&rolex[]=c',
    );
  });

  it('set replaces every spelling of its name with the route’s one value', () => {
    expect(originQuery({ set: { source: 'gw' } }, '?source[]=client&a=1&SOURCE=again')).toBe(
      '?source=gw&a=1',
    );
  });

  // PHP, Rails (Rack) and Express (qs) read `ids[]=7` and `ids[0]=7` alike (the array `ids`), and
  // `ids=7` as `ids` too: a route naming `ids[]` names that parameter, however the client spells it.
  it('removes every spelling origins read as a name given with [] after it', () => {
    for (const spelling of ['ids[]=7', 'ids%5B%5D=7', 'ids[0]=7', 'ids[x]=7', 'ids=7', 'IDS%5B0%5D=7']) {
      expect(originQuery({ remove: ['ids[]'] }, `?page=2&${spelling}&q=x`), spelling).toBe('?page=2&q=x');
    }
    expect(originQuery({ remove: ['ids[]'] }, '?idsx[]=1&ids_all=2')).toBe('?idsx[]=1&ids_all=2');
  });

  // ASP.NET Core's model binding and Spring's data binding read a `.` as a property of what the name
  // before it names: `filter.status` is the `filter[status]` a dictionary binds, `user.role` is `user`'s.
  it('removes the spellings with `.` that ASP.NET Core and Spring read as the removed name', () => {
    const transform = { remove: ['filter[status]', 'user', 'page.size'] };
    for (const spelling of [
      'filter.status=x',
      'Filter.Status=x',
      'filter.status[]=x',
      'user.role=admin',
      'user.roles[0]=admin',
      'USER.address.city=x',
      'page[size]=1000',
      'Page[Size]=1000',
      'page_size=1000',
      'page.size=1000',
    ]) {
      expect(originQuery(transform, `?a=1&${spelling}&b=2`), spelling).toBe('?a=1&b=2');
    }
    // Names no origin reads as those: kept as the client wrote them.
    expect(originQuery(transform, '?filter_status=x&users.role=y&filter[status.x]=z&page.sizes=1')).toBe(
      '?filter_status=x&users.role=y&filter[status.x]=z&page.sizes=1',
    );
  });

  // PHP stops reading a name at the `]` no `[` follows (`filter[status]x` is `filter[status]`), qs skips
  // what is not in brackets, Rack reads it as one key more (`filter[status][x]`); Spring reads a key in
  // quotes as the key (`filter['status']` is `filter[status]`).
  it('removes the bracketed spellings PHP, Rack, qs and Spring read as the removed name', () => {
    for (const spelling of [
      'filter[status]x=1',
      'filter[status]]=1',
      'filter[status]x[y]=1',
      "filter['status']=1",
      'filter["status"]=1',
      "filter['status'][0]=1",
      'role[]x=1',
    ]) {
      expect(originQuery({ remove: ['filter[status]', 'role'] }, `?a=1&${spelling}&b=2`), spelling).toBe(
        '?a=1&b=2',
      );
    }
    expect(originQuery({ remove: ['filter[status]'] }, "?filter[statusx]=1&filter['status]=2")).toBe(
      "?filter[statusx]=1&filter['status]=2",
    );
  });

  it('set of a name with `.` leaves the origin the route’s one value in either reading', () => {
    expect(originQuery({ set: { 'user.id': '7' } }, '?user[id]=1&a=1&user_id=2')).toBe('?user.id=7&a=1');
  });

  it('set of a name given with [] leaves the origin the route’s one value, whatever the client sent', () => {
    expect(originQuery({ set: { 'scopes[]': 'read' } }, '?scopes[0]=admin&a=1')).toBe(
      '?scopes%5B%5D=read&a=1',
    );
    expect(originQuery({ set: { 'scopes[]': 'read' } }, '?scopes[]=read&a=1&scopes=admin')).toBe(
      '?scopes%5B%5D=read&a=1',
    );
  });
});
