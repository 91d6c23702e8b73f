// @ts-check
// The hub's error sentences in the console's language. The API answers a refusal with one sentence (`detail`),
// in English where the hub's own code wrote it so (its logs and the installers' CLI are English), or as
// "English / 中文" where it wrote both. The console shows it in the language chosen: the matching half of a
// sentence written in both, or the Chinese below for one written in English only. Keys are the hub's
// sentences with `{}` where the hub puts a value (the node, the state …); `{0}`, `{1}` … put them back.
// A malformed request is refused by FastAPI with pydantic's list of problems (English): each is shown by its
// `type` below, with the limits pydantic gives in `ctx`.
// tests/hub/test_console_server_errors.py reads every sentence the console's routes can raise from the hub's
// source and fails on one in English only that has no line here (so a new or reworded error needs its Chinese).

/** @type {Record<string, string>} the hub's English sentence (template) → its Chinese */
export const ZH = {
  "'{}' is the hub's own name (its outage incidents carry it); pick another id": '“{0}”是中心自身的名称（断线事件使用它），请换一个编号',
  'unknown stage {}': '未知的处置阶段 {0}',
  'resolving needs an outcome, one of {}': '结案需要处置结果，可选：{0}',
  'no alarm {}': '没有报警 {0}',
  'alarm is already {}': '该报警已处于“{0}”状态',
  'bad username {}: use letters, digits and . _ @ - (at most 64)': '用户名 {0} 无效：只能用字母、数字和 . _ @ -（最多 64 个）',
  'role must be one of {}': '角色必须是以下之一：{0}',
  'the password must have at least 8 characters': '密码至少需要 8 个字符',
  'too many failed logins; try again later': '登录失败次数过多，请稍后再试',
  'wrong username or password': '用户名或密码错误',
  'user {} exists (use `pingan-hub users passwd {}`)': '用户 {0} 已存在（改密码请用 `pingan-hub users passwd {1}`）',
  'no user {}': '没有用户 {0}',
  '{} holds no ca.key: give the broker folder of `pingan-hub broker config`': '{0} 中没有 ca.key：请给出 `pingan-hub broker config` 生成的代理服务器目录',
  'no user {} on this machine for the broker to run as: install mosquitto from the distribution (it creates the user), or create the user':
    '本机没有供代理服务器运行的用户 {0}：请从发行版安装 mosquitto（会创建该用户），或手动创建该用户',
  'the node config for {} would be invalid: {}': '{0} 的设备配置将无效：{1}',
  'no node {}': '没有设备 {0}',
  'no node {} (pingan-hub nodes list shows the known ones)': '没有设备 {0}（`pingan-hub nodes list` 列出已登记的设备）',
  '{} was removed; register it again with `pingan-hub nodes add {} --auth cert ...`': '{0} 已移除；请用 `pingan-hub nodes add {1} --auth cert ...` 重新登记',
  '{} has no MQTT login from the hub; make one with `pingan-hub nodes add {}`': '{0} 没有中心签发的 MQTT 登录；请用 `pingan-hub nodes add {1}` 生成',
  '{} was removed; register it again with `pingan-hub nodes add {}`': '{0} 已移除；请用 `pingan-hub nodes add {1}` 重新登记',
  '{} logs in with an MQTT password, not a client certificate: a new password (or a move to certificates) comes with `pingan-hub nodes add {} [--auth cert --ca DIR/ca.crt]`, which writes a whole new bundle':
    '{0} 使用 MQTT 密码登录，而不是客户端证书：新密码（或改用证书）需运行 `pingan-hub nodes add {1} [--auth cert --ca DIR/ca.crt]`，会生成一个全新的安装包',
  'send the node config either as `yaml` (text) or as `config` (an object)': '设备配置请以 `yaml`（文本）或 `config`（对象）之一发送',
  'the config is larger than {} bytes': '配置超过 {0} 字节',
  '{} has no command-signing key (removed or never provisioned): register it with pingan-hub nodes add':
    '{0} 没有指令签名密钥（已移除或从未登记）：请用 pingan-hub nodes add 登记',
  '{} has no command-signing key': '{0} 没有指令签名密钥',
  'the config object cannot be written as YAML (nested too deeply?)': '该配置对象无法写成 YAML（嵌套过深？）',
  'node {} has no command-signing key: register it first': '设备 {0} 没有指令签名密钥：请先登记',
  'node {} is {}: live view needs it online': '设备 {0} 当前为 {1}：实时画面需要设备在线',
  'the hub is not connected to the MQTT broker: it cannot reach any pole now': '中心未连接 MQTT 代理服务器：目前无法联系任何报警柱',
  'node {}: {}': '设备 {0}：{1}',
  'live session {} belongs to {}': '实时画面会话 {0} 属于 {1}',
  'node {} did not answer within {} s (offline, or live view not supported by its software)':
    '设备 {0} 在 {1} 秒内没有应答（离线，或其软件不支持实时画面）',
  'no block {}: create it first (POST /api/doors/blocks)': '没有楼栋 {0}：请先创建（POST /api/doors/blocks）',
  '{} is not a door of any block': '{0} 不是任何楼栋的门',
  'no tenant {}': '没有租户 {0}',
  'door {} has no signing key: re-register it (pingan-hub nodes add {} --kind rental_door)':
    '门 {0} 没有签名密钥：请重新登记（pingan-hub nodes add {1} --kind rental_door）',
  'door {} has no signing key': '门 {0} 没有签名密钥',
  'no command {}': '没有指令 {0}',
  'block {} exists': '楼栋 {0} 已存在',
  'no node {}: register it first (pingan-hub nodes add {} --kind rental_door)': '没有设备 {0}：请先登记（pingan-hub nodes add {1} --kind rental_door）',
  'node {} is a {}, not a rental_door': '设备 {0} 是 {1}，不是出租屋门禁',
  '{} of {} rows have errors; nothing was stored': '{1} 行中有 {0} 行有错误；没有保存任何内容',
  'tenant {} is {}': '租户 {0} 的状态为 {1}',
  '{} is a door of block {}, the tenant lives in {}': '{0} 是楼栋 {1} 的门，租户住在 {2}',
  'unit id {}-{} is taken by another block; choose other names': '单元编号 {0}-{1} 已被其他楼栋使用；请换个名称',
  'the range ends before it starts': '结束时间早于开始时间',
  'a range is at most 400 days': '时间范围最多 400 天',
  'bad date {}: use YYYY-MM-DD or an ISO-8601 time': '日期 {0} 无效：请用 年-月-日（YYYY-MM-DD）或 ISO-8601 时间',
  'period must be today, yesterday or week': '统计周期必须是今天、昨天或本周',
  'bad time {}: use HH:MM between 00:00 and 24:00': '时间 {0} 无效：请用 00:00 到 24:00 之间的 时:分',
  'bad time {}: use HH:MM, e.g. 08:00': '时间 {0} 无效：请用 时:分，例如 08:00',
  'team kind must be one of {}': '队伍类型必须是以下之一：{0}',
  'team id: 1 to 32 characters': '队伍编号：1 到 32 个字符',
  '{} is not set up as a responder yet (ask the centre to add you to a team)': '{0} 尚未设为处置人员（请中心把您加入一个队伍）',
  'say whom: responders (to), a team, or nearest': '请说明派给谁：人员、队伍或最近的人',
  'nobody on duty left to ask for this alarm': '该报警已没有可派的值班人员',
  'say why you decline': '请说明拒绝的原因',
  'outcome must be one of {}': '处置结果必须是以下之一：{0}',
  'the photo is over {} MB': '照片超过 {0} MB',
  '{} images are not taken: send a JPEG, PNG or WebP photo': '不接受 {0} 图片：请发送 JPEG、PNG 或 WebP 照片',
  'no photo {} of alarm {}': '报警 {1} 没有照片 {0}',
  'no snapshot stored': '没有保存的抓拍',
  'weekday {}: 0 (Monday) to 6 (Sunday)': '星期 {0} 无效：0（周一）到 6（周日）',
  'shift {}-{} is empty': '班次 {0}-{1} 时长为零',
  'no team {}': '没有队伍 {0}',
  'no user {} (pingan-hub users add {} --role responder)': '没有用户 {0}（pingan-hub users add {1} --role responder）',
  '{} is a {}, not a responder': '{0} 是 {1}，不是处置人员',
  'kind must be one of {}': '类型必须是以下之一：{0}',
  'no shift of your team now: you can check in during a shift': '您的队伍现在没有班次：请在班次内签到',
  'off duty: position not recorded': '未在值班：位置未记录',
  'no consent to share position: position not recorded': '未同意共享位置：位置未记录',
  "{} is not on duty for this alarm's grid": '{0} 不在该报警所在网格值班',
  "nobody of team {} is on duty for this alarm's grid": '队伍 {0} 中没有人在该报警所在网格值班',
  'the alarm is resolved': '该报警已结案',
  'no task {}': '没有任务 {0}',
  'this task is not yours': '这不是您的任务',
  'the task is {}': '该任务状态为 {0}',
  'the alarm is already resolved: nothing to do': '该报警已结案：无需处理',
  'not an image (send a JPEG, PNG or WebP photo)': '不是图片（请发送 JPEG、PNG 或 WebP 照片）',
  'at most {} photos per task': '每个任务最多 {0} 张照片',
  'cross-origin login refused': '拒绝跨站登录',
  'login required': '需要登录',
  'the hub is not connected to the broker: try again when /api/health says mqtt connected':
    '中心未连接代理服务器：请在 /api/health 显示 mqtt 已连接后重试',
  'since must be before until': '开始时间必须早于结束时间',
  'at most {} ids at a time': '一次最多 {0} 个编号',
  'no snapshot for event {} (yet)': '事件 {0} （暂时）没有抓拍',
  "no frame {} of event {}'s burst": '事件 {1} 的连拍中没有第 {0} 帧',
  // patrol stickers' keys (hub/patrols/tokens.py): a broken key file refuses every check-in with this
  '{}: unreadable patrol keys ({}); restore it from its backup': '{0}：巡逻签到密钥无法读取（{1}）；请从备份恢复',
  'no patrol key {}; keys: {}': '没有巡逻签到密钥 {0}；现有密钥：{1}',
  '{} is the current key: rotate first (pingan-hub nodes qr-key --rotate), reprint, then retire it':
    '{0} 是当前密钥：请先轮换（pingan-hub nodes qr-key --rotate）、重新打印，再停用它',
};

/** pydantic's problem types (a malformed request, a config push) → the Chinese, `{name}` from its `ctx`. */
export const PROBLEM_ZH = {
  missing: '必填', extra_forbidden: '不允许此字段', string_type: '应为文本', string_too_short: '至少需要 {min_length} 个字符',
  string_too_long: '最多 {max_length} 个字符', string_pattern_mismatch: '格式不符（{pattern}）',
  int_parsing: '应为整数', int_type: '应为整数', int_from_float: '应为整数', float_parsing: '应为数字',
  float_type: '应为数字', bool_parsing: '应为 是/否（true/false）', bool_type: '应为 是/否（true/false）',
  greater_than: '应大于 {gt}', greater_than_equal: '应不小于 {ge}', less_than: '应小于 {lt}',
  less_than_equal: '应不大于 {le}', literal_error: '应为以下之一：{expected}', enum: '应为以下之一：{expected}',
  too_short: '至少需要 {min_length} 项', too_long: '最多 {max_length} 项', list_type: '应为列表',
  dict_type: '应为对象', model_type: '应为对象', model_attributes_type: '应为对象', json_invalid: 'JSON 格式错误',
  date_parsing: '应为日期（年-月-日）', date_from_datetime_parsing: '应为日期（年-月-日）', date_type: '应为日期（年-月-日）',
  datetime_parsing: '应为日期时间（ISO-8601）', datetime_from_date_parsing: '应为日期时间（ISO-8601）',
  datetime_type: '应为日期时间（ISO-8601）', time_parsing: '应为时间（时:分）', uuid_parsing: '应为 UUID',
  url_parsing: '网址无效', url_scheme: '网址的协议不允许',
};

/** One of pydantic's problems, its sentence in `lang`: by its type (a custom check's own sentence through
 * serverText), else pydantic's English as it came. @param {{msg?: string, type?: string, ctx?: any}} p */
export function problemText(p, /** @type {string} */ lang) {
  const msg = String(p.msg ?? '');
  if (lang === 'en') return msg;
  if (p.type === 'value_error' || p.type === 'assertion_error') {
    return serverText(msg.replace(/^(Value error|Assertion failed), /, ''), lang);
  }
  const zh = /** @type {Record<string, string>} */ (PROBLEM_ZH)[p.type || ''];
  if (!zh) return msg;
  const ctx = p.ctx || {};
  return zh.replace(/\{(\w+)\}/g, (_, k) => String(ctx[k] ?? ''));
}

/** Each template as an anchored pattern (its `{}` any text), most specific (longest) first. */
const PATTERNS = Object.entries(ZH)
  .sort(([a], [b]) => b.length - a.length)
  .map(([en, zh]) => /** @type {[RegExp, string]} */ ([new RegExp('^' + en.split('{}')
    .map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('(.+?)') + '$', 's'), zh]));
const HAN = /[\u4e00-\u9fff]/;

/** A hub sentence in the language `lang` ('zh' or 'en'): the matching half of "English / 中文", the Chinese
 * of an English sentence this table knows (the values put back, each through `value`: a stage's name in
 * Chinese), else the sentence as it came. */
export function serverText(/** @type {string} */ text, /** @type {string} */ lang,
  /** @type {(v: string) => string} */ value = (v) => v) {
  const s = String(text ?? '');
  const cut = s.lastIndexOf(' / ');
  if (cut > 0 && HAN.test(s.slice(cut)) && !HAN.test(s.slice(0, cut))) {
    return lang === 'en' ? s.slice(0, cut) : s.slice(cut + 3);
  }
  if (lang === 'en' || HAN.test(s)) return s;
  for (const [re, zh] of PATTERNS) {
    const m = re.exec(s);
    if (m) return zh.replace(/\{(\d)\}/g, (_, i) => value(m[Number(i) + 1] ?? ''));
  }
  return s;
}

/** An answer's `detail` in `lang`, whatever its shape: the hub's sentence (or `{message}` with one), or
 * pydantic's list of problems (each as "field: problem"). '' when there is none: the caller shows the status. */
export function detailText(/** @type {any} */ detail, /** @type {string} */ lang) {
  if (Array.isArray(detail)) {
    return detail.map((p) => {
      const field = (p?.loc || []).filter((/** @type {any} */ x) => x !== 'body').join('.');
      return `${field ? field + ': ' : ''}${problemText(p || {}, lang)}`;
    }).join('; ');
  }
  if (detail && typeof detail === 'object') return detail.message ? serverText(String(detail.message), lang) : '';
  return detail ? serverText(String(detail), lang) : '';
}
