import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseCommand } from '../commands.js';
import { mentionsName, stripMentions } from '../mentions.js';
import { splitReply, truncateInput } from '../split.js';

test('splitReply keeps order, respects the limit and prefers sentence boundaries', () => {
  const text = 'First sentence here. Second one is a bit longer! Third? Fourth sentence ends it.';
  const parts = splitReply(text, 30);
  assert.ok(parts.length > 1);
  for (const p of parts) assert.ok([...p].length <= 30, `part within limit: ${p}`);
  assert.equal(parts.join(' '), text, 'nothing lost, nothing reordered');
  assert.equal(parts[0], 'First sentence here.');
});

test('splitReply never cuts inside a character (CJK, emoji) and handles unbroken text', () => {
  const text = '床前明月光，疑是地上霜。举头望明月，低头思故乡。😀😀😀😀😀😀😀😀';
  const parts = splitReply(text, 12);
  for (const p of parts) {
    assert.ok([...p].length <= 12);
    assert.ok(!/[\uD800-\uDBFF]$/.test(p), 'no lone high surrogate at the end');
  }
  assert.equal(parts.join(''), text);
  assert.equal(parts[0], '床前明月光，疑是地上霜。');
  assert.deepEqual(splitReply('x'.repeat(25), 10), ['x'.repeat(10), 'x'.repeat(10), 'x'.repeat(5)]);
  assert.deepEqual(splitReply('   ', 10), []);
  assert.deepEqual(splitReply('short', 10), ['short']);
});

test('truncateInput cuts by characters and says so', () => {
  assert.deepEqual(truncateInput('hello', 10), { text: 'hello', cut: false });
  assert.deepEqual(truncateInput('😀😀😀', 2), { text: '😀😀', cut: true });
});

test('mentions: U+2005 after @name, plain spaces, end of text, full-width @, not substrings', () => {
  assert.equal(mentionsName('@Nemo\u2005hi', ['Nemo']), true);
  assert.equal(mentionsName('@Nemo hi', ['Nemo']), true);
  assert.equal(mentionsName('hi @Nemo', ['Nemo']), true);
  assert.equal(mentionsName('＠Nemo\u2005你好', ['Nemo']), true);
  assert.equal(mentionsName('@Nemo2 hi', ['Nemo']), false);
  assert.equal(mentionsName('email@Nemo hi', ['Nemo']), false);
  assert.equal(mentionsName('@小助手\u2005在吗', ['Nemo', '小助手']), true);
  assert.equal(mentionsName('@A.B hi', ['A.B']), true, 'regex characters in names are literal');
  assert.equal(mentionsName('@AxB hi', ['A.B']), false);
  assert.equal(stripMentions('@Nemo\u2005what is up', ['Nemo']), 'what is up');
  assert.equal(stripMentions('tell me @Nemo', ['Nemo']), 'tell me');
  assert.equal(stripMentions('@Nemo\u2005', ['Nemo']), '');
});

test('commands: #help #reset #status #rotate #stats, full-width and upper case; chat is not a command', () => {
  assert.deepEqual(parseCommand('#help'), { name: 'help', args: '' });
  assert.deepEqual(parseCommand('＃ＲＥＳＥＴ'), { name: 'reset', args: '' });
  assert.deepEqual(parseCommand(' #status please'), { name: 'status', args: 'please' });
  assert.equal(parseCommand('#rotate')?.name, 'rotate');
  assert.equal(parseCommand('#stats')?.name, 'stats');
  assert.equal(parseCommand('#帮助')?.name, 'help');
  assert.equal(parseCommand('#whatever')?.name, 'unknown');
  assert.equal(parseCommand('#1 in the charts'), null);
  assert.equal(parseCommand('hello #help'), null);
  assert.equal(parseCommand('#'), null);
});
