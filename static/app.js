// mianshi front end: plain ES module, no build step.
// Views (hash routes): #/login, #/resumes, #/resume/new, #/resume/<id>, #/interviews,
// #/interview/new, #/room/<interview id>?resume=<resume id>, #/report/<interview id>.
import { Voice } from './voice.js';

const AUTH_KEY = 'mianshi.auth';
// Position types, phase titles and cheat kinds are the server's data (GET /interviews/options/):
// the page names none of them, so a phase or detector plugin shows up here without an edit.
const PHASE_LABELS = {};
let optionsLoading = null;
function loadOptions() {
  if (!optionsLoading) {
    optionsLoading = api('GET', '/interviews/options/').then(({ data }) => {
      for (const p of data.phases || []) PHASE_LABELS[p.name] = p.title;
      return data;
    }).catch((e) => { optionsLoading = null; throw e; });
  }
  return optionsLoading;
}
const LANGUAGE_LABELS = { python: 'Python', javascript: 'JavaScript', cpp: 'C++', c: 'C', java: 'Java', go: 'Go' };
const AUDIO_RATE = 16000;
const FRAME_SAMPLES = 640;             // 1 280 bytes, 40 ms
const VIDEO_INTERVAL_MS = 1000;
const HOLD_FRAMES = 250;               // audio kept while the socket is down: 10 s
const RESUME_WAIT_MS = 3000;           // how long a reconnected page waits for the re-sent message
const AUDIO_LATENCY_HINT = 'playback';   // larger render buffers: fewer capture-FIFO underruns

// Debug hook read by the browser tests (and handy in the console).
const debug = {
  audio: { framesSent: 0, bytesSent: 0, sendTimes: [], audioTimes: [], firstFrameIndex: null, lastFrameIndex: null,
    framesProduced: 0, framesDropped: 0, framesReplayed: 0, contextRate: null, trackRate: null, endSent: 0 },
  video: { framesSent: 0, width: null, height: null },
  voice: { samplesScheduled: 0, localUtterances: 0, framesMutedForEcho: 0 },
  received: [],
  connects: 0,
};
window.__mianshi = debug;

// ------------------------------------------------------------------------------------------------
// helpers
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k === 'value') el.value = v;
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

// replaceChildren() without the null/false placeholders of conditional parts (h() skips them too)
function fill(el, ...children) {
  el.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
  return el;
}

function getAuth() {
  try { return JSON.parse(localStorage.getItem(AUTH_KEY)) || null; } catch { return null; }
}
function setAuth(auth) {
  if (auth) localStorage.setItem(AUTH_KEY, JSON.stringify(auth)); else localStorage.removeItem(AUTH_KEY);
  renderNav();
}

class ApiError extends Error {
  constructor(msg, status, field) { super(msg); this.status = status; this.field = field; }
}

async function api(method, path, body) {
  const headers = { Accept: 'application/json' };
  const auth = getAuth();
  if (auth && auth.token) headers.Authorization = `Bearer ${auth.token}`;
  const isForm = body instanceof FormData;            // file uploads: the browser sets the multipart type
  if (body !== undefined && !isForm) headers['Content-Type'] = 'application/json';
  let resp;
  try {
    resp = await fetch(path, { method, headers, body: body === undefined || isForm ? body : JSON.stringify(body) });
  } catch (e) {
    throw new ApiError('无法连接服务器，请检查网络', 0);
  }
  let data = null;
  try { data = await resp.json(); } catch { data = null; }
  if (resp.status === 401 && !path.startsWith('/users/login') && !path.startsWith('/users/register')) {
    setAuth(null);
    go('#/login');
    throw new ApiError((data && data.msg) || '登录已过期，请重新登录', 401);
  }
  if (!resp.ok || (data && data.success === false)) {
    throw new ApiError((data && data.msg) || `请求失败（HTTP ${resp.status}）`, resp.status, data && data.field);
  }
  return { status: resp.status, data: data || {} };
}

// multipart upload (resume / job-description files), field "file"
function apiUpload(path, file) {
  const form = new FormData();
  form.append('file', file, file.name);
  return api('POST', path, form);
}

// the draft of the last resume import, shown in the resume form (#/resume/import) until saved
let importedDraft = null;

let flashTimer = null;
function flash(msg, kind = 'error') {
  const el = document.getElementById('flash');
  el.textContent = msg;
  el.className = `flash ${kind}`;
  el.hidden = false;
  clearTimeout(flashTimer);
  flashTimer = setTimeout(() => { el.hidden = true; }, kind === 'error' ? 8000 : 4000);
}
function clearFlash() { document.getElementById('flash').hidden = true; }

function go(hash) { if (location.hash !== hash) location.hash = hash; else route(); }

function fmtTime(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? String(iso) : d.toLocaleString('zh-CN', { hour12: false });
}

function bytesToBase64(bytes) {
  let s = '';
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

function renderNav() {
  const auth = getAuth();
  document.getElementById('nav').hidden = !auth;
  document.getElementById('nav-user').textContent = auth ? auth.username || '' : '';
}

// ------------------------------------------------------------------------------------------------
// router
let current = null;   // the mounted view; may have dispose()

function parseHash() {
  const raw = location.hash.replace(/^#/, '') || '/';
  const [path, query] = raw.split('?');
  return { parts: path.split('/').filter(Boolean), params: new URLSearchParams(query || '') };
}

async function route() {
  if (current && current.dispose) current.dispose();
  current = null;
  const view = document.getElementById('view');
  fill(view, );
  const { parts, params } = parseHash();
  const auth = getAuth();
  if (!auth && parts[0] !== 'login') { go('#/login'); return; }
  let name = parts[0] || 'resumes';
  if (name === 'login' && auth) name = 'resumes';
  view.dataset.view = name;
  try {
    if (name === 'login') current = loginView(view);
    else if (name === 'resumes') current = await resumesView(view);
    else if (name === 'resume') current = await resumeEditView(view, parts[1] || 'new');
    else if (name === 'interviews') current = await interviewsView(view);
    else if (name === 'interview' && parts[1] === 'new') current = await newInterviewView(view, params.get('resume'));
    else if (name === 'room') current = await roomView(view, parts[1], params.get('resume'));
    else if (name === 'report') current = reportView(view, parts[1]);
    else view.append(h('div', { class: 'card' }, h('h1', {}, '页面不存在'), h('a', { href: '#/resumes' }, '返回首页')));
  } catch (e) {
    view.append(h('div', { class: 'card error' }, e.message || String(e)));
  }
}

// ------------------------------------------------------------------------------------------------
// login / register
function loginView(root) {
  const username = h('input', { id: 'username', name: 'username', autocomplete: 'username', maxlength: 64 });
  const password = h('input', { id: 'password', name: 'password', type: 'password', autocomplete: 'current-password' });
  const msg = h('p', { class: 'error', id: 'login-error' });
  async function submit(kind) {
    msg.textContent = '';
    const body = { username: username.value.trim(), password: password.value };
    if (!body.username || !body.password) { msg.textContent = '请输入用户名和密码'; return; }
    try {
      const { data } = await api('POST', kind === 'register' ? '/users/register/' : '/users/login/', body);
      setAuth({ token: data.token, userId: data.user_id, username: body.username });
      flash(kind === 'register' ? '注册成功，欢迎使用！' : '登录成功', 'info');
      go('#/resumes');
    } catch (e) { msg.textContent = e.message; }
  }
  root.append(h('div', { class: 'card narrow' },
    h('h1', {}, '登录 / 注册'),
    h('form', { onsubmit: (ev) => { ev.preventDefault(); submit('login'); } },
      h('label', { for: 'username' }, '用户名'), username,
      h('label', { for: 'password' }, '密码'), password,
      msg,
      h('div', { class: 'row' },
        h('button', { type: 'submit', id: 'login-btn' }, '登录'),
        h('button', { type: 'button', class: 'secondary', id: 'register-btn', onclick: () => submit('register') }, '注册'))),
  ));
  return {};
}

// ------------------------------------------------------------------------------------------------
// resumes
async function resumesView(root) {
  const card = h('div', { class: 'card' }, h('h1', {}, '我的简历'), h('p', { class: 'muted' }, '加载中…'));
  root.append(card);
  const { data } = await api('GET', '/users/resume/list/');
  const resumes = data.resumes || [];
  fill(card, 
    h('div', { class: 'row', style: 'justify-content: space-between' },
      h('h1', {}, `我的简历（${data.total ?? resumes.length}）`),
      h('button', { id: 'new-resume', onclick: () => go('#/resume/new') }, '新建简历')),
    importBox(),
    resumes.length === 0 ? h('p', { class: 'muted', id: 'no-resumes' }, '还没有简历，先创建一份吧。') :
      h('table', { id: 'resume-table' },
        h('thead', {}, h('tr', {}, h('th', {}, '简历名称'), h('th', {}, '期望职位'), h('th', {}, '更新时间'), h('th', {}, '状态'), h('th', {}, '操作'))),
        h('tbody', {}, resumes.map((r) => h('tr', { dataset: { resumeId: r.resume_id } },
          h('td', { class: 'resume-name' }, r.resume_name),
          h('td', {}, r.expected_position || ''),
          h('td', {}, fmtTime(r.updated_at)),
          h('td', {}, r.completed ? h('span', { class: 'badge ok' }, '已完善') : h('span', { class: 'badge warn' }, '待完善')),
          h('td', { class: 'row' },
            h('button', { class: 'secondary', onclick: () => go(`#/resume/${r.resume_id}`) }, '编辑'),
            h('button', { class: 'start-interview', onclick: () => go(`#/interview/new?resume=${r.resume_id}`) }, '用此简历面试'),
            h('button', { class: 'danger', onclick: async () => {
              if (!confirm(`确定删除简历“${r.resume_name}”吗？`)) return;
              try { await api('DELETE', `/users/resume/${r.resume_id}/`); flash('简历已删除', 'info'); route(); } catch (e) { flash(e.message); }
            } }, '删除')))))),
  );
  return {};
}

// 导入简历: drag a PDF / Word / text file here (or choose one); the parsed draft opens in the form
function importBox() {
  const status = h('p', { class: 'muted', id: 'import-status' }, '支持文字版 PDF、Word（.docx）、TXT / Markdown，最大 5 MB。');
  const input = h('input', { type: 'file', id: 'resume-file', accept: '.pdf,.docx,.txt,.md,application/pdf', hidden: true });
  const busy = (on) => { box.classList.toggle('busy', on); input.disabled = on; };
  async function take(file) {
    if (!file) return;
    busy(true);
    status.className = 'muted';
    status.textContent = `正在解析“${file.name}”…`;
    try {
      const { data } = await apiUpload('/users/resume/import/', file);
      importedDraft = data;
      go('#/resume/import');
    } catch (e) {
      status.className = 'error';
      status.id = 'import-status';
      status.textContent = e.message;
    } finally { busy(false); input.value = ''; }
  }
  input.addEventListener('change', () => take(input.files[0]));
  const box = h('div', { class: 'dropzone', id: 'resume-drop',
    ondragover: (ev) => { ev.preventDefault(); box.classList.add('over'); },
    ondragleave: () => box.classList.remove('over'),
    ondrop: (ev) => { ev.preventDefault(); box.classList.remove('over'); take(ev.dataTransfer.files[0]); } },
  h('strong', {}, '导入简历'), ' 把简历文件拖到这里，或 ',
  h('button', { type: 'button', class: 'secondary', id: 'choose-resume-file', onclick: () => input.click() }, '选择文件'),
  input, status);
  return box;
}

async function downloadOriginal(id, name) {
  const auth = getAuth();
  const resp = await fetch(`/users/resume/${encodeURIComponent(id)}/file/`, { headers: { Authorization: `Bearer ${auth && auth.token}` } });
  if (!resp.ok) { flash('原始文件下载失败'); return; }
  const url = URL.createObjectURL(await resp.blob());
  const a = h('a', { href: url, download: name || 'resume' });
  document.body.append(a); a.click(); a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

const LIST_SECTIONS = {
  education: { title: '教育经历', fields: [['school', '学校'], ['major', '专业'], ['degree', '学历'], ['start', '开始时间'], ['end', '结束时间']] },
  work_experience: { title: '工作经历', fields: [['company', '公司'], ['position', '职位'], ['start', '开始时间'], ['end', '结束时间'], ['description', '工作内容', 'textarea']] },
  projects: { title: '项目经历', fields: [['name', '项目名称'], ['role', '担任角色'], ['tech_stack', '技术栈'], ['description', '项目描述', 'textarea']] },
};

function itemRow(section, item = {}) {
  const spec = LIST_SECTIONS[section];
  const row = h('div', { class: 'item-row', dataset: { section } });
  const inputs = spec.fields.map(([key, label, kind]) => {
    let value = item[key];
    if (Array.isArray(value)) value = value.join('，');
    const input = kind === 'textarea' ? h('textarea', { name: `${section}.${key}` }) : h('input', { name: `${section}.${key}` });
    input.value = value ?? '';
    input.dataset.key = key;
    return h('div', {}, h('label', {}, label), input);
  });
  row.append(h('div', { class: 'grid2' }, inputs),
    h('button', { type: 'button', class: 'link', onclick: () => row.remove() }, '删除此条'));
  // keep fields the form does not show (so editing never loses data)
  row._extra = Object.fromEntries(Object.entries(item).filter(([k]) => !spec.fields.some(([f]) => f === k)));
  return row;
}

function readItems(container, section) {
  return [...container.querySelectorAll(`.item-row[data-section="${section}"]`)].map((row) => {
    const obj = { ...(row._extra || {}) };
    for (const input of row.querySelectorAll('[data-key]')) obj[input.dataset.key] = input.value.trim();
    return obj;
  }).filter((obj) => LIST_SECTIONS[section].fields.some(([k]) => obj[k]));
}

async function resumeEditView(root, id) {
  const imported = id === 'import' ? importedDraft : null;
  if (id === 'import' && !imported) { go('#/resumes'); return {}; }
  const isNew = id === 'new' || id === 'import';
  let resume = { skills: [], education: [], work_experience: [], projects: [] };
  if (imported) resume = { ...resume, ...imported.resume };
  if (!isNew) {
    const { data } = await api('GET', `/users/resume/${encodeURIComponent(id)}/`);
    resume = data.resume || data;
  }
  const f = (name, label, kind = 'input', attrs = {}) => {
    const el = kind === 'textarea' ? h('textarea', { id: `f-${name}`, name, ...attrs }) : h('input', { id: `f-${name}`, name, ...attrs });
    el.value = resume[name] ?? '';
    return h('div', {}, h('label', { for: `f-${name}` }, label), el);
  };
  const skills = h('textarea', { id: 'f-skills', name: 'skills', placeholder: '每行一项，或用逗号分隔，例如：Python，MySQL，Redis' });
  skills.value = (resume.skills || []).join('\n');
  const lists = {};
  const listBlocks = Object.entries(LIST_SECTIONS).map(([section, spec]) => {
    const box = h('div', { id: `list-${section}` });
    for (const item of resume[section] || []) box.append(itemRow(section, typeof item === 'object' ? item : { description: String(item) }));
    lists[section] = box;
    return h('div', {}, h('h2', {}, spec.title), box,
      h('button', { type: 'button', class: 'secondary', id: `add-${section}`, onclick: () => box.append(itemRow(section)) }, `添加${spec.title}`));
  });
  const msg = h('p', { class: 'error', id: 'resume-error' });
  const form = h('form', { id: 'resume-form', onsubmit: async (ev) => {
    ev.preventDefault();
    msg.textContent = '';
    const body = {
      resume_name: form.querySelector('#f-resume_name').value.trim(),
      expected_position: form.querySelector('#f-expected_position').value.trim(),
      name: form.querySelector('#f-name').value.trim(),
      self_evaluation: form.querySelector('#f-self_evaluation').value.trim(),
      skills: skills.value.split(/[\n,，、;；]+/).map((s) => s.trim()).filter(Boolean),
    };
    for (const section of Object.keys(LIST_SECTIONS)) body[section] = readItems(form, section);
    if (!body.resume_name) { msg.textContent = '请填写简历名称'; return; }
    if (imported && imported.upload_id) body.upload_id = imported.upload_id;   // keep the original file
    try {
      if (isNew) await api('POST', '/users/resume/', body);
      else await api('PUT', `/users/resume/${encodeURIComponent(id)}/`, body);
      if (imported) importedDraft = null;
      flash('简历已保存', 'info');
      go('#/resumes');
    } catch (e) {
      msg.textContent = e.field ? `${e.message}（字段：${e.field}）` : e.message;
    }
  } },
  h('div', { class: 'grid2' },
    f('resume_name', '简历名称', 'input', { required: true, maxlength: 100 }),
    f('expected_position', '期望职位'),
    f('name', '姓名')),
  listBlocks,
  h('h2', {}, '技能'), skills,
  h('h2', {}, '自我评价'), f('self_evaluation', '自我评价', 'textarea'),
  msg,
  h('div', { class: 'row', style: 'margin-top: 1rem' },
    h('button', { type: 'submit', id: 'save-resume' }, '保存简历'),
    h('button', { type: 'button', class: 'secondary', onclick: () => go('#/resumes') }, '返回')));
  const notice = imported ? h('div', { class: 'import-notice', id: 'import-notice' },
    h('p', {}, `已从“${(imported.file && imported.file.filename) || '文件'}”解析出以下内容（${imported.source === 'llm' ? '大模型解析' : '规则解析'}），请核对修改后保存。`),
    (imported.warnings || []).length ? h('ul', { id: 'import-warnings' }, imported.warnings.map((w) => h('li', {}, w))) : null) : null;
  const original = !isNew && resume.file ? h('p', { class: 'muted' }, '原始文件：',
    h('button', { type: 'button', class: 'link', id: 'download-original', onclick: () => downloadOriginal(id, resume.file.filename) },
      `${resume.file.filename}（${Math.ceil((resume.file.size || 0) / 1024)} KB）`)) : null;
  root.append(h('div', { class: 'card' }, h('h1', {}, imported ? '导入简历：核对后保存' : (isNew ? '新建简历' : '编辑简历')), notice, original, form));
  return {};
}

// ------------------------------------------------------------------------------------------------
// interviews
async function interviewsView(root) {
  const [{ data }] = await Promise.all([api('GET', '/interviews/'), loadOptions()]);
  const items = data.interviews || [];
  root.append(h('div', { class: 'card' },
    h('div', { class: 'row', style: 'justify-content: space-between' },
      h('h1', {}, `面试记录（${data.total ?? items.length}）`),
      h('button', { onclick: () => go('#/interview/new') }, '新建面试')),
    items.length === 0 ? h('p', { class: 'muted' }, '还没有面试记录。') :
      h('table', { id: 'interview-table' },
        h('thead', {}, h('tr', {}, h('th', {}, '职位'), h('th', {}, '公司'), h('th', {}, '面试时间'), h('th', {}, '状态'), h('th', {}, '操作'))),
        h('tbody', {}, items.map((it) => {
          const id = it.id ?? it.interview_id;
          const finished = it.status === 'finished' || it.status === 'completed' || it.phase === 'end';
          return h('tr', {},
            h('td', {}, it.position_name || ''),
            h('td', {}, it.company_name || ''),
            h('td', {}, fmtTime(it.interview_time)),
            h('td', {}, finished ? '已结束' : (PHASE_LABELS[it.phase] || it.status || '未开始')),
            h('td', { class: 'row' },
              finished ? null : h('button', { class: 'secondary', onclick: () => go(`#/room/${encodeURIComponent(id)}${it.resume_id != null ? `?resume=${encodeURIComponent(it.resume_id)}` : ''}`) }, '进入面试'),
              h('button', { class: 'secondary', onclick: () => go(`#/report/${id}`) }, '查看报告')));
        })))));
  return {};
}

async function newInterviewView(root, resumeId) {
  const { data } = await api('GET', '/users/resume/list/');
  const resumes = data.resumes || [];
  if (resumes.length === 0) {
    root.append(h('div', { class: 'card' }, h('h1', {}, '新建面试'), h('p', {}, '面试问题根据简历生成，请先创建一份简历。'),
      h('button', { onclick: () => go('#/resume/new') }, '新建简历')));
    return {};
  }
  const resumeSel = h('select', { id: 'f-resume' }, resumes.map((r) =>
    h('option', { value: r.resume_id }, `${r.resume_name}${r.completed ? '' : '（待完善）'}`)));
  if (resumeId) resumeSel.value = resumeId;
  const { position_types: positionTypes = [] } = await loadOptions();
  const typeSel = h('select', { id: 'f-position_type' }, positionTypes.map(({ value, label }) => h('option', { value }, `${label}（${value}）`)));
  const inp = (id, label, attrs = {}) => h('div', {}, h('label', { for: id }, label), h(attrs.kind || 'input', { id, ...attrs, kind: null }));
  const msg = h('p', { class: 'error', id: 'interview-error' });
  const form = h('form', { id: 'interview-form', onsubmit: async (ev) => {
    ev.preventDefault();
    msg.textContent = '';
    const val = (id) => form.querySelector(`#${id}`).value.trim();
    const body = {
      position_name: val('f-position_name'),
      position_type: typeSel.value,
      company_name: val('f-company_name') || undefined,
      position_description: val('f-position_description'),
      position_requirements: val('f-position_requirements') || undefined,
    };
    const when = val('f-interview_time');
    if (when) {
      const d = new Date(when);                       // datetime-local: the browser's local time
      if (Number.isNaN(d.getTime())) { msg.textContent = '面试时间格式不正确'; return; }
      body.interview_time = d.toISOString().replace(/\.\d{3}Z$/, 'Z');
    }
    if (!body.position_name) { msg.textContent = '请填写职位名称'; return; }
    try {
      const { data: created } = await api('POST', '/interviews/create/', body);
      flash(created.msg || '面试创建成功', 'info');
      go(`#/room/${encodeURIComponent(created.id)}?resume=${encodeURIComponent(resumeSel.value)}`);
    } catch (e) {
      msg.textContent = e.field ? `${e.message}（字段：${e.field}）` : e.message;
    }
  } },
  h('label', { for: 'f-resume' }, '使用的简历'), resumeSel,
  h('div', { class: 'grid2' },
    inp('f-position_name', '职位名称', { placeholder: '例如：后端开发工程师', maxlength: 100 }),
    h('div', {}, h('label', { for: 'f-position_type' }, '职位类型'), typeSel),
    inp('f-company_name', '公司名称（可选）'),
    inp('f-interview_time', '面试时间（可选，默认现在）', { type: 'datetime-local' })),
  inp('f-position_description', '职位描述', { kind: 'textarea' }),
  inp('f-position_requirements', '任职要求（可选）', { kind: 'textarea' }),
  h('p', { class: 'muted' }, '开始后请允许浏览器使用摄像头和麦克风。面试分为自我介绍、问答和代码题三个环节。'),
  msg,
  h('button', { type: 'submit', id: 'create-interview' }, '创建并开始面试'));
  const jdText = h('textarea', { id: 'jd-text', placeholder: '把招聘网站上的职位描述整段粘贴到这里，自动填写职位名称、类型、职位描述和任职要求' });
  const jdMsg = h('p', { class: 'muted', id: 'jd-status' });
  const jdFill = (d) => {
    const set = (sel, v) => { if (v) form.querySelector(sel).value = v; };
    set('#f-position_name', d.position_name);
    set('#f-company_name', d.company_name);
    set('#f-position_description', d.position_description);
    set('#f-position_requirements', d.position_requirements);
    if (d.position_type) typeSel.value = d.position_type;
    jdMsg.className = 'muted';
    jdMsg.textContent = '已根据职位描述填写下方表单，请核对。';
  };
  const jdFail = (e) => { jdMsg.className = 'error'; jdMsg.textContent = e.message; };
  const jdFile = h('input', { type: 'file', id: 'jd-file', accept: '.pdf,.docx,.txt,.md', hidden: true });
  jdFile.addEventListener('change', async () => {
    const file = jdFile.files[0];
    if (!file) return;
    try { jdFill((await apiUpload('/interviews/jd/parse/', file)).data); } catch (e) { jdFail(e); } finally { jdFile.value = ''; }
  });
  const jdBox = h('details', { class: 'jd-box', id: 'jd-box' }, h('summary', {}, '粘贴职位描述'), jdText,
    h('div', { class: 'row', style: 'margin-top: .5rem' },
      h('button', { type: 'button', id: 'jd-parse', onclick: async () => {
        try { jdFill((await api('POST', '/interviews/jd/parse/', { text: jdText.value })).data); } catch (e) { jdFail(e); }
      } }, '解析并填写'),
      h('button', { type: 'button', class: 'secondary', onclick: () => jdFile.click() }, '或上传职位描述文件'), jdFile),
    jdMsg);
  root.append(h('div', { class: 'card' }, h('h1', {}, '新建面试'), jdBox, form));
  return {};
}

// ------------------------------------------------------------------------------------------------
// the interview room
async function roomView(root, interviewId, resumeId) {
  const id = decodeURIComponent(interviewId || '');
  if (id && !resumeId) {
    // entered without a resume (e.g. from the list before the interview ever started): the
    // interview may already know its resume, else the candidate picks one
    const { data } = await api('GET', `/interviews/${encodeURIComponent(id)}/`);
    const known = data.interview && data.interview.resume_id;
    if (known !== null && known !== undefined && known !== '') {
      go(`#/room/${encodeURIComponent(id)}?resume=${encodeURIComponent(known)}`);
      return {};
    }
    const { data: list } = await api('GET', '/users/resume/list/');
    const sel = h('select', { id: 'pick-resume' }, (list.resumes || []).map((r) => h('option', { value: r.resume_id }, r.resume_name)));
    root.append(h('div', { class: 'card narrow' }, h('h1', {}, '选择简历'),
      h('p', {}, '面试问题根据所选简历生成。'), sel,
      h('div', { class: 'row', style: 'margin-top: .8rem' },
        h('button', { disabled: !(list.resumes || []).length,
          onclick: () => go(`#/room/${encodeURIComponent(id)}?resume=${encodeURIComponent(sel.value)}`) }, '进入面试'))));
    return {};
  }
  const room = new InterviewRoom(root, id, resumeId);
  room.mount();
  return room;
}

class InterviewRoom {
  constructor(root, interviewId, resumeId) {
    this.root = root;
    this.interviewId = interviewId;
    this.resumeId = resumeId;
    this.ws = null;
    this.streamReady = false;
    this.phase = null;
    this.ended = false;
    this.disposed = false;
    this.muted = false;
    this.audioStreaming = false;   // frames being sent for the current turn
    this.attempt = 0;
    this.reconnectTimer = null;
    this.videoTimer = null;
    this.media = null;
    this.audioCtx = null;
    this.worklet = null;
    this.ui = {};
    this.held = [];                // audio frames kept while reconnecting
    this.hadStream = false;
    this.awaitingResume = false;
    this.resumeTimer = null;
    this.onVisibility = () => this.sendVisibility();
    this.voice = new Voice({ send: (m) => this.send(m), highlight: (text, a, b) => this.highlightSpoken(text, a, b),
      stats: debug.voice });
  }

  // --- the interviewer's voice (opt-in: create_stream "tts") ------------------------------------
  highlightSpoken(text, start, end) {
    if (text !== this.lastSaid || this.input === 'code') return;   // another message is shown now
    if (start < 0) fill(this.ui.question, text);
    else fill(this.ui.question, text.slice(0, start), h('mark', { class: 'spoken' }, text.slice(start, end)), text.slice(end));
  }

  toggleVoice() {
    this.voice.setEnabled(!this.voice.enabled);
    this.ui.voiceBtn.textContent = this.voice.enabled ? '关闭语音' : '开启语音';
    if (this.voice.enabled && this.voice.serverVoice === null && this.socketOpen()) {
      this.setConn('语音已开启，重新连接后生效');
    }
  }

  mount() {
    debug.room = this;
    const el = (tag, id, attrs = {}, ...kids) => { const e = h(tag, { id, ...attrs }, ...kids); this.ui[id.replace(/-([a-z])/g, (_, c) => c.toUpperCase())] = e; return e; };
    if (!this.interviewId || !this.resumeId) {
      this.root.append(h('div', { class: 'card error' }, '缺少面试 ID 或简历 ID，请从“新建面试”进入。'));
      return;
    }
    this.root.append(
      h('div', { class: 'room' },
        h('div', {},
          h('div', { class: 'card' },
            el('video', 'preview', { autoplay: true, muted: true, playsinline: true }),
            el('canvas', 'snapshot', { hidden: true }),
            h('div', { class: 'status-line' }, '连接：', el('span', 'conn-status', {}, '未连接')),
            h('div', { class: 'status-line' }, '麦克风：', el('span', 'mic-status', {}, '准备中')),
            h('div', { class: 'meter' }, el('div', 'level')),
            h('div', { class: 'row', style: 'margin-top: .6rem' },
              el('button', 'mute-btn', { class: 'secondary', type: 'button', onclick: () => this.toggleMute() }, '静音'),
              el('button', 'voice-btn', { class: 'secondary', type: 'button', onclick: () => this.toggleVoice() },
                this.voice.enabled ? '关闭语音' : '开启语音'),
              el('button', 'replay-btn', { class: 'secondary', type: 'button', onclick: () => this.voice.replay() }, '重听'),
              el('button', 'leave-btn', { class: 'danger', type: 'button', onclick: () => this.leave() }, '离开面试'))),
          el('div', 'cheat-box', { class: 'card', hidden: true }, h('h2', {}, '作弊提醒'), el('div', 'cheat-list'))),
        h('div', {},
          h('div', { class: 'card' },
            h('div', { class: 'row', style: 'justify-content: space-between' },
              h('div', {}, '当前阶段：', el('span', 'phase', { class: 'phase' }, '等待开始')),
              el('span', 'progress', { class: 'muted' })),
            el('div', 'question', { class: 'question' }, '正在连接面试官…'),
            el('div', 'answer-tools', {},
              h('div', { class: 'row', style: 'margin-top: .6rem' },
                el('button', 'end-answer', { type: 'button', disabled: true, onclick: () => this.endAnswer() }, '回答完毕'),
                h('span', { class: 'muted' }, '说“说完了”或点击“回答完毕”结束本轮回答')),
              h('label', { for: 'text-answer' }, '也可以输入文字回答：'),
              el('textarea', 'text-answer', { placeholder: '在此输入回答，然后点击“提交文字回答”', maxlength: 5000 }),
              el('button', 'send-text', { type: 'button', class: 'secondary', disabled: true, onclick: () => this.sendText() }, '提交文字回答'))),
          el('div', 'code-panel', { class: 'card', hidden: true },
            h('h2', {}, '代码题'),
            el('div', 'problem', { class: 'problem' }),
            h('div', { class: 'row' }, h('label', { for: 'code-language' }, '语言：'),
              el('select', 'code-language', { style: 'width: auto' })),
            el('textarea', 'code-editor', { class: 'editor', spellcheck: 'false', autocomplete: 'off' }),
            h('div', { class: 'row', style: 'margin-top: .5rem' },
              el('button', 'submit-code', { type: 'button', onclick: () => this.submitCode() }, '提交代码'),
              el('button', 'finish-code', { type: 'button', class: 'secondary', onclick: () => this.finishCode() }, '完成代码题'),
              el('span', 'code-timer', { class: 'muted' }),
              h('span', { class: 'muted' }, '时间内可多次提交，以最后一次为准；点击“完成代码题”或时间到后结束面试。')),
            el('div', 'code-result')),
          h('div', { class: 'card' }, h('h2', {}, '实时转写'),
            el('div', 'transcript', { class: 'transcript' }, el('div', 'partial', { class: 'partial' }))),
          el('div', 'end-screen', { class: 'card', hidden: true },
            h('h1', {}, '面试已结束'),
            h('p', {}, '感谢参加本次模拟面试，面试报告正在生成。'),
            h('button', { id: 'view-report', onclick: () => go(`#/report/${encodeURIComponent(this.interviewId)}`) }, '查看面试报告')),
          el('div', 'room-errors', { class: 'card error', hidden: true }))),
    );
    this.ui.codeEditor.addEventListener('keydown', (ev) => {
      if (ev.key !== 'Tab') return;
      ev.preventDefault();
      const t = ev.target, s = t.selectionStart;
      t.setRangeText('    ', s, t.selectionEnd, 'end');
    });
    document.addEventListener('visibilitychange', this.onVisibility);
    // media and socket start together: a slow (or never answered) permission prompt must not keep
    // the candidate from the interview; typed answers work without a microphone
    this.startMedia();
    // corrected finals are asked for only from a server that corrects (GET /interviews/options/);
    // otherwise create_stream stays exactly the guide's
    loadOptions().then((o) => { this.wantCorrections = !!o.asr_corrections; }, () => {})
      .finally(() => { if (!this.disposed) this.connect(); });
  }

  // --- media -----------------------------------------------------------------------------------
  async startMedia() {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      this.ui.micStatus.textContent = '浏览器不支持摄像头/麦克风（需要 HTTPS 或 localhost），请使用文字回答';
      return;
    }
    try {
      this.media = await navigator.mediaDevices.getUserMedia({
        audio: { channelCount: 1, echoCancellation: false, noiseSuppression: false, autoGainControl: false },
        video: { width: { ideal: 640 }, height: { ideal: 480 } },
      });
    } catch (e) {
      this.ui.micStatus.textContent = `无法打开摄像头或麦克风（${e.name}），请检查浏览器权限；仍可使用文字回答`;
      return;
    }
    if (this.disposed) { this.stopMedia(); return; }
    this.ui.preview.srcObject = this.media;
    this.ui.preview.play().catch(() => {});
    if (this.streamReady) this.startVideo();     // the socket may have been faster than the camera
    try {
      const src = this.openAudioContext();
      debug.audio.contextRate = this.audioCtx.sampleRate;
      await this.audioCtx.audioWorklet.addModule('/static/audio-worklet.js');
      this.worklet = new AudioWorkletNode(this.audioCtx, 'pcm16k', {
        numberOfInputs: 1, numberOfOutputs: 1, outputChannelCount: [1],
        processorOptions: { targetRate: AUDIO_RATE, frameSamples: FRAME_SAMPLES },
      });
      this.worklet.port.onmessage = (ev) => this.onAudioFrame(ev.data);
      const sink = this.audioCtx.createGain();
      sink.gain.value = 0;                       // keep the graph pulled, play nothing
      src.connect(this.worklet).connect(sink).connect(this.audioCtx.destination);
      const ctx = this.audioCtx;
      ctx.onstatechange = () => { if (this.audioCtx === ctx) this.updateMicStatus(); };
      this.updateMicStatus();
      if (ctx.state !== 'running') {
        // resume() may stay pending (autoplay policy, no output device): never await it
        ctx.resume().catch(() => {});
        document.addEventListener('click', () => { if (this.audioCtx === ctx) ctx.resume().catch(() => {}); }, { once: true });
      }
    } catch (e) {
      this.ui.micStatus.textContent = `音频处理初始化失败：${e.message}；仍可使用文字回答`;
    }
  }

  openAudioContext() {
    // Run the context at the microphone's own rate when the browser reports it: the browser then
    // has no second resampler between capture and the worklet. Firefox refuses a source whose rate
    // differs from the context's, so fall back to the default context on any error.
    const track = this.media.getAudioTracks()[0];
    const settings = (track && track.getSettings && track.getSettings()) || {};
    const opts = { latencyHint: AUDIO_LATENCY_HINT };
    debug.audio.trackRate = settings.sampleRate || null;
    if (settings.sampleRate) opts.sampleRate = settings.sampleRate;
    try {
      this.audioCtx = new AudioContext(opts);
      return this.audioCtx.createMediaStreamSource(this.media);
    } catch (e) {
      if (this.audioCtx) this.audioCtx.close().catch(() => {});
      this.audioCtx = new AudioContext();
      return this.audioCtx.createMediaStreamSource(this.media);
    }
  }

  stopMedia() {
    if (this.videoTimer) { clearInterval(this.videoTimer); this.videoTimer = null; }
    if (this.worklet) { try { this.worklet.port.postMessage({ cmd: 'stop' }); this.worklet.disconnect(); } catch {} this.worklet = null; }
    if (this.audioCtx) { this.audioCtx.close().catch(() => {}); this.audioCtx = null; }
    if (this.media) { for (const t of this.media.getTracks()) t.stop(); this.media = null; }
  }

  updateMicStatus() {
    if (!this.audioCtx) return;
    if (this.audioCtx.state !== 'running' && this.audioCtx.state !== 'closed') {
      this.ui.micStatus.textContent = '音频未启动（点击页面任意处开启）';
    } else if (this.muted) this.ui.micStatus.textContent = '已静音';
    else if (this.audioStreaming) this.ui.micStatus.textContent = '正在收音';
    else this.ui.micStatus.textContent = '已开启（当前环节不收音）';
  }

  // What the client offers comes from the server (interview_message.input: speech | code | none), so
  // a phase this page has never seen works; older servers send no input: the built-in phases'.
  speakingPhase() { return this.input === 'speech'; }

  socketOpen() { return !!this.ws && this.ws.readyState === WebSocket.OPEN; }

  liveTurn() { return !this.muted && !this.ended && !this.disposed && this.speakingPhase(); }

  wantAudio() {
    return this.liveTurn() && this.streamReady && !this.awaitingResume && this.socketOpen();
  }

  holdAudio() {
    // the socket dropped (or is closing) in the middle of a turn: keep what the candidate says
    // for the resumed session (sent in order once the server has re-sent the same question)
    return this.liveTurn() && this.hadStream && !(this.streamReady && !this.awaitingResume && this.socketOpen());
  }

  releaseHeld(send) {
    clearTimeout(this.resumeTimer);
    this.awaitingResume = false;
    const held = this.held;
    this.held = [];
    if (send && this.wantAudio()) { for (const f of held) this.sendFrame(f); debug.audio.framesReplayed += held.length; }
    else debug.audio.framesDropped += held.length;
  }

  onAudioFrame(msg) {
    if (!msg || msg.type !== 'frame') return;
    debug.audio.framesProduced += 1;
    const pcm = new Int16Array(msg.pcm);
    let peak = 0;
    for (let i = 0; i < pcm.length; i += 8) { const a = Math.abs(pcm[i]); if (a > peak) peak = a; }
    this.ui.level.style.width = `${Math.min(100, (peak / 32768) * 140)}%`;
    if (this.voice.echoing()) {
      // echo: while the interviewer speaks (and its echo dies away) the microphone is not uploaded:
      // muting gave a lower CER and fewer interviewer words than echo cancellation (bench/bench_echo.py)
      debug.voice.framesMutedForEcho += 1;
      if (this.audioStreaming) this.stopAudioTurn();
      return;
    }
    if (!this.wantAudio()) {
      if (this.holdAudio()) {
        this.held.push(msg);
        if (this.held.length > HOLD_FRAMES) { this.held.shift(); debug.audio.framesDropped += 1; }
        return;
      }
      if (this.audioStreaming) this.stopAudioTurn();
      debug.audio.framesDropped += 1;
      return;
    }
    this.sendFrame(msg);
  }

  sendFrame(msg) {
    if (!this.audioStreaming) { this.audioStreaming = true; this.updateMicStatus(); }
    const bytes = new Uint8Array(msg.pcm);
    if (this.send({ type: 'audio_frame', audio_data: bytesToBase64(bytes), end: false })) {
      const a = debug.audio;
      a.framesSent += 1;
      a.bytesSent += bytes.length;
      if (a.firstFrameIndex === null) a.firstFrameIndex = msg.index;
      a.lastFrameIndex = msg.index;
      a.sendTimes.push(performance.now());
      a.audioTimes.push(typeof msg.time === 'number' ? msg.time * 1000 : null);
      if (a.sendTimes.length > 20000) { a.sendTimes.splice(0, 10000); a.audioTimes.splice(0, 10000); }
    } else {
      debug.audio.framesDropped += 1;
    }
  }

  stopAudioTurn() {
    // "停止时发送一次 { type: audio_frame, audio_data: '', end: true }"
    if (!this.audioStreaming) return;
    this.audioStreaming = false;
    if (this.send({ type: 'audio_frame', audio_data: '', end: true })) debug.audio.endSent += 1;
    this.updateMicStatus();
  }

  toggleMute() {
    this.muted = !this.muted;
    this.ui.muteBtn.textContent = this.muted ? '取消静音' : '静音';
    if (this.muted) this.stopAudioTurn();
    this.updateMicStatus();
  }

  startVideo() {
    if (this.videoTimer || !this.media || this.media.getVideoTracks().length === 0) return;
    this.videoTimer = setInterval(() => this.sendVideoFrame(), VIDEO_INTERVAL_MS);
  }

  sendVideoFrame() {
    const v = this.ui.preview;
    if (!this.streamReady || this.ended || !v || v.readyState < 2 || !v.videoWidth) return;
    // 640x480 for a 4:3 camera of at least that size, else 480x360
    const [w, hgt] = v.videoWidth >= 640 && v.videoHeight >= 480 ? [640, 480] : [480, 360];
    const canvas = this.ui.snapshot;
    canvas.width = w; canvas.height = hgt;
    canvas.getContext('2d').drawImage(v, 0, 0, w, hgt);
    canvas.toBlob((blob) => {
      if (!blob) return;
      const reader = new FileReader();
      reader.onloadend = () => {
        const base64data = String(reader.result).split(',')[1];
        if (this.send({ type: 'video_frame', frame_data: base64data, frame_type: 'keyframe' })) {
          debug.video.framesSent += 1; debug.video.width = w; debug.video.height = hgt;
        }
      };
      reader.readAsDataURL(blob);
    }, 'image/jpeg', 0.8);
  }

  // --- socket ------------------------------------------------------------------------------------
  wsUrl() {
    const auth = getAuth();
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    return `${proto}//${location.host}/ws/webrtc/?token=${encodeURIComponent(auth ? auth.token : '')}`;
  }

  connect() {
    if (this.disposed || this.ended) return;
    this.setConn(this.attempt ? `正在重连（第 ${this.attempt} 次）…` : '连接中…');
    const ws = new WebSocket(this.wsUrl());
    this.ws = ws;
    debug.connects += 1;
    ws.onmessage = (ev) => { if (ws === this.ws) this.onMessage(ev.data); };
    ws.onclose = (ev) => { if (ws === this.ws) this.onClose(ev); };
    ws.onerror = () => {};
  }

  send(obj) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify(obj));
    return true;
  }

  setConn(text) { if (this.ui.connStatus) this.ui.connStatus.textContent = text; }

  onClose(ev) {
    this.streamReady = false;
    this.audioStreaming = false;
    this.ws = null;
    if (this.ended) { this.setConn('面试已结束'); return; }
    if (this.disposed) return;
    if (ev.code === 4401) {
      this.setConn('认证失败');
      setAuth(null);
      flash('登录已过期，请重新登录');
      go('#/login');
      return;
    }
    if (ev.code === 4409) {
      // the interview was continued in another window or tab: reconnecting would take it back
      this.setConn('该面试已在其他窗口继续，本页面已断开');
      this.disposed = true;
      this.stopMedia();
      return;
    }
    // 4429 (too many connections) and everything else: retry with backoff
    const delay = Math.min(10000, 500 * 2 ** this.attempt) + Math.floor(Math.random() * 250);
    this.attempt += 1;
    this.setConn(`连接断开，${(delay / 1000).toFixed(1)} 秒后重连（第 ${this.attempt} 次）`);
    this.reconnectTimer = setTimeout(() => this.connect(), delay);
  }

  onMessage(raw) {
    let msg;
    try { msg = JSON.parse(raw); } catch { return; }
    debug.received.push(msg.type === 'interview_message' || msg.type !== 'asr_result' || msg.is_final ? msg : { type: msg.type, is_final: false });
    if (debug.received.length > 500) debug.received.splice(0, 250);
    switch (msg.type) {
      case 'connection_established':
        this.setConn('已连接，正在创建视频流…');
        this.send({ type: 'create_stream', title: '面试视频流', description: '实时面试',
          interview_id: String(this.interviewId), resume_id: String(this.resumeId),
          ...(this.wantCorrections ? { asr_corrections: true } : {}),   // additive (README)
          ...(this.voice.wanted() ? { tts: true } : {}) });
        break;
      case 'stream_created':
        this.streamReady = true;
        if (msg.tts) this.voice.serverVoice = !!msg.tts.voice;
        this.resumed = this.hadStream;
        this.hadStream = true;
        if (this.resumed) {
          // hold the audio until the server re-sends where the interview is (api.md: reconnect)
          this.awaitingResume = true;
          this.resumeTimer = setTimeout(() => this.releaseHeld(false), RESUME_WAIT_MS);
        }
        this.attempt = 0;
        this.setConn(debug.connects > 1 ? '已重新连接，面试继续' : '已连接');
        this.startVideo();
        this.sendVisibility(true);
        break;
      case 'interview_message': this.onInterviewMessage(msg); this.voice.onMessage(msg); break;
      case 'tts_audio': this.voice.onAudio(msg); break;
      case 'tts_stop': this.voice.stop(msg.message_id, false); break;
      case 'asr_result': this.onAsr(msg); break;
      case 'asr_correction': this.onCorrection(msg); break;
      case 'cheat_detected': this.onCheat(msg); break;
      case 'code_result': this.onCodeResult(msg); break;
      case 'error': this.showError(msg.text || '未知错误'); break;
      default: break;
    }
  }

  onInterviewMessage(msg) {
    const phase = msg.phase;
    const prev = this.phase;
    const sameTurn = this.resumed && phase === prev && msg.text === this.lastSaid;
    this.phase = phase;
    const prevInput = this.input;
    this.input = msg.input || 'none';
    if (msg.phase_title) PHASE_LABELS[phase] = msg.phase_title;
    this.ui.phase.textContent = PHASE_LABELS[phase] || phase || '';
    this.ui.phase.dataset.phase = phase || '';
    this.ui.phase.dataset.input = this.input;
    if (msg.total) {
      this.ui.progress.textContent = msg.question_index ? `第 ${msg.question_index} / ${msg.total} 题` : `共 ${msg.total} 题`;
    } else if (prev !== phase) this.ui.progress.textContent = '';
    if (this.input === 'code' && msg.problem) {
      this.ui.question.textContent = `代码题：${msg.problem.title || ''}（见下方题目与编辑器）`;
      this.addLine('interviewer', `代码题：${msg.problem.title || ''}`);
    } else {
      this.ui.question.textContent = msg.text || '';
      // after a reconnect the server re-sends the current message: show it once
      if (!(this.resumed && msg.text === this.lastSaid)) this.addLine('interviewer', msg.text || '');
    }
    this.lastSaid = msg.text;
    this.resumed = false;
    if (this.awaitingResume) this.releaseHeld(sameTurn);
    const speaking = this.input === 'speech';
    this.ui.endAnswer.disabled = !speaking;
    this.ui.sendText.disabled = !speaking;
    this.ui.answerTools.hidden = !speaking;
    if (prevInput !== this.input && !speaking) this.stopAudioTurn();
    if (this.input === 'code' && (msg.problem || !this.problemShown)) this.showProblem(msg.problem);
    if (phase === 'end') this.finish();
    this.updateMicStatus();
  }

  addLine(kind, text) {
    if (!text) return null;
    const line = h('div', { class: `final ${kind}` }, text);
    this.ui.transcript.insertBefore(line, this.ui.partial);
    this.ui.transcript.scrollTop = this.ui.transcript.scrollHeight;
    return line;
  }

  // a final corrected after it was shown: the newest line still showing what was heard takes the
  // corrected text (what is stored and scored); what was heard stays in its title
  onCorrection(msg) {
    const lines = [...this.ui.transcript.querySelectorAll('.final.me:not(.corrected)')];
    const line = lines.reverse().find((el) => el.textContent === msg.raw_text);
    if (!line) return;
    line.textContent = msg.text;
    line.title = `识别原文：${msg.raw_text}`;
    line.classList.add('corrected');
  }

  onAsr(msg) {
    if (msg.is_final === true) {
      this.ui.partial.textContent = '';
      this.addLine('me', msg.text);
    } else {
      this.ui.partial.textContent = msg.text || '';
      this.ui.transcript.scrollTop = this.ui.transcript.scrollHeight;
    }
  }

  onCheat(msg) {
    this.ui.cheatBox.hidden = false;
    const time = new Date().toLocaleTimeString('zh-CN', { hour12: false });
    this.ui.cheatList.prepend(h('div', { class: 'cheat', dataset: { kind: msg.kind || '' } }, `${time} ${msg.text || '检测到异常行为'}`));
    while (this.ui.cheatList.children.length > 8) this.ui.cheatList.lastChild.remove();
  }

  showError(text) {
    this.ui.roomErrors.hidden = false;
    fill(this.ui.roomErrors, h('div', {}, text));
  }

  sendVisibility(initial = false) {
    if (!this.streamReady) return;
    const hidden = document.visibilityState === 'hidden';
    if (initial && !hidden) return;
    this.send({ type: 'client_event', event: hidden ? 'tab_hidden' : 'tab_visible' });
  }

  // --- answers -----------------------------------------------------------------------------------
  endAnswer() {
    if (this.send({ type: 'end_answer' })) {
      this.stopAudioTurn();
      this.ui.endAnswer.disabled = true;     // re-enabled by the next interview_message
    } else this.showError('连接已断开，正在重连，请稍后再试');
  }

  sendText() {
    const text = this.ui.textAnswer.value.trim();
    if (!text) { this.showError('请先输入回答内容'); return; }
    if (this.send({ type: 'text_answer', text })) {
      this.addLine('me typed', text);
      this.ui.textAnswer.value = '';
      this.ui.sendText.disabled = true;       // re-enabled by the next interview_message
    } else this.showError('连接已断开，正在重连，请稍后再试');
  }

  showProblem(problem) {
    this.ui.codePanel.hidden = false;
    if (!problem) { fill(this.ui.problem, h('p', { class: 'muted' }, '题目加载中…')); return; }
    this.problemShown = true;
    this.ui.problem.dataset.problemId = problem.id || '';
    if (problem.time_limit_seconds) this.startCodeTimer(problem.time_limit_seconds);
    const examples = (problem.examples || []).map((ex, i) => h('div', {},
      h('strong', {}, `示例 ${i + 1}`),
      h('pre', {}, `输入：\n${ex.input ?? ''}\n输出：\n${ex.output ?? ''}`),
      ex.explanation ? h('p', { class: 'muted' }, ex.explanation) : null));
    fill(this.ui.problem, 
      h('h3', { id: 'problem-title' }, problem.title || '代码题'),
      h('p', { style: 'white-space: pre-wrap' }, problem.description || ''),
      problem.input_format ? h('p', {}, h('strong', {}, '输入格式：'), problem.input_format) : null,
      problem.output_format ? h('p', {}, h('strong', {}, '输出格式：'), problem.output_format) : null,
      ...examples,
      problem.time_limit_seconds ? h('p', { class: 'muted' }, `本环节限时 ${Math.max(1, Math.round(problem.time_limit_seconds / 60))} 分钟，程序从标准输入读取、向标准输出打印结果。`) : null);
    const langs = problem.languages && problem.languages.length ? problem.languages : ['python'];
    const chosen = this.ui.codeLanguage.value;          // kept when the problem is re-sent (reconnect)
    fill(this.ui.codeLanguage, ...langs.map((l) => h('option', { value: l }, LANGUAGE_LABELS[l] || l)));
    if (chosen && langs.includes(chosen)) this.ui.codeLanguage.value = chosen;
    const starters = problem.starter_code || {};
    const applyStarter = () => { if (!this.ui.codeEditor.value.trim() || this.ui.codeEditor.dataset.starter === '1') {
      this.ui.codeEditor.value = starters[this.ui.codeLanguage.value] || '';
      this.ui.codeEditor.dataset.starter = '1';
    } };
    this.ui.codeLanguage.onchange = applyStarter;
    this.ui.codeEditor.oninput = () => { this.ui.codeEditor.dataset.starter = '0'; };
    applyStarter();
  }

  startCodeTimer(seconds) {
    // informative only: the server ends the phase; a re-sent problem (reconnect) restarts the count
    clearInterval(this.codeTimer);
    const deadline = Date.now() + seconds * 1000;
    const tick = () => {
      const left = Math.max(0, Math.round((deadline - Date.now()) / 1000));
      this.ui.codeTimer.textContent = `剩余时间约 ${Math.floor(left / 60)}:${String(left % 60).padStart(2, '0')}`;
      if (!left) clearInterval(this.codeTimer);
    };
    tick();
    this.codeTimer = setInterval(tick, 1000);
  }

  finishCode() {
    if (!window.confirm('确定完成代码题并结束面试吗？')) return;
    if (this.send({ type: 'end_answer' })) this.ui.finishCode.disabled = true;
    else this.showError('连接已断开，正在重连，请稍后再试');
  }

  submitCode() {
    const code = this.ui.codeEditor.value;
    if (!code.trim()) { fill(this.ui.codeResult, h('p', { class: 'error' }, '请先编写代码')); return; }
    if (this.send({ type: 'code_submit', language: this.ui.codeLanguage.value || 'python', code })) {
      this.ui.submitCode.disabled = true;
      fill(this.ui.codeResult, h('p', { class: 'muted', id: 'code-running' }, '代码运行中…'));
    } else fill(this.ui.codeResult, h('p', { class: 'error' }, '连接已断开，请稍后重试'));
  }

  onCodeResult(msg) {
    this.ui.submitCode.disabled = false;
    const allPassed = msg.total > 0 && msg.passed === msg.total;
    const cases = msg.cases || [];
    fill(this.ui.codeResult, 
      h('p', { id: 'code-summary', class: allPassed ? 'ok' : 'error' }, `通过 ${msg.passed} / ${msg.total} 个测试用例`),
      msg.text ? h('p', { id: 'code-text' }, msg.text) : null,
      cases.length ? h('table', { id: 'code-cases' },
        h('thead', {}, h('tr', {}, h('th', {}, '用例'), h('th', {}, '结果'), h('th', {}, '耗时'), h('th', {}, '详情'))),
        h('tbody', {}, cases.map((c, i) => h('tr', { class: c.passed ? 'case-pass' : 'case-fail' },
          h('td', {}, `${c.visible === false ? '隐藏用例' : '示例'} ${c.index ?? i + 1}`),
          h('td', {}, c.passed ? h('span', { class: 'badge ok' }, '通过') : h('span', { class: 'badge warn' }, c.error || '未通过')),
          h('td', {}, c.time_ms != null ? `${Math.round(c.time_ms)} ms` : ''),
          h('td', {}, c.visible === false || c.passed ? null : h('pre', { class: 'case-detail' },
            `输入：\n${c.input ?? ''}\n期望输出：\n${c.expected ?? ''}\n实际输出：\n${c.got ?? ''}${c.stderr ? `\n错误输出：\n${c.stderr}` : ''}`)))))) : null);
  }

  finish() {
    this.ended = true;
    clearInterval(this.codeTimer);
    this.stopAudioTurn();
    this.ui.endScreen.hidden = false;
    this.ui.codePanel.hidden = true;
    this.ui.answerTools.hidden = true;
    this.send({ type: 'disconnect' });
    this.setConn('面试已结束');
    this.stopMedia();
    this.ui.preview.hidden = true;
    this.ui.muteBtn.hidden = true;
    this.ui.leaveBtn.textContent = '返回面试记录';
    this.ui.micStatus.textContent = '已关闭';
    if (this.ws) { try { this.ws.close(1000); } catch {} }
  }

  leave() {
    if (!this.ended && !confirm('确定离开面试吗？之后可以从“面试记录”回来继续。')) return;
    go('#/interviews');
  }

  dispose() {
    this.disposed = true;
    document.removeEventListener('visibilitychange', this.onVisibility);
    clearTimeout(this.reconnectTimer);
    clearTimeout(this.resumeTimer);
    clearInterval(this.codeTimer);
    this.held = [];
    if (this.ws) {
      this.stopAudioTurn();
      this.send({ type: 'disconnect' });
      try { this.ws.close(1000); } catch {}
      this.ws = null;
    }
    this.stopMedia();
  }
}

// ------------------------------------------------------------------------------------------------
// report
function scoreBadge(score) {
  const n = Number(score);
  const cls = n >= 7 ? 'badge ok' : n >= 4 ? 'badge' : 'badge warn';
  return h('span', { class: cls }, `${Number.isFinite(n) ? Math.round(n * 10) / 10 : '-'} / 10`);
}

function reportView(root, interviewId) {
  const id = decodeURIComponent(interviewId || '');
  const card = h('div', { class: 'card', id: 'report' }, h('h1', {}, '面试报告'),
    h('p', { class: 'muted', id: 'report-status' }, '加载中…'));
  root.append(card);
  let timer = null, disposed = false, polls = 0;
  async function load() {
    if (disposed) return;
    polls += 1;
    let res;
    try {
      res = await api('GET', `/interviews/${encodeURIComponent(id)}/report/`);
    } catch (e) {
      card.querySelector('#report-status').textContent = e.message;
      if (e.status === 409) {
        card.append(h('button', { id: 'continue-interview', onclick: () => go(`#/room/${encodeURIComponent(id)}`) }, '继续面试'));
      } else if (e.status === 0 || (e.status >= 500 && e.status !== 503)) timer = setTimeout(load, 5000);
      return;
    }
    if (res.status === 202) {
      const d = res.data || {};
      card.querySelector('#report-status').textContent = d.msg || '报告生成中，请稍候…（页面会自动刷新）';
      timer = setTimeout(load, Math.min(5000, 1000 + polls * 250));
      return;
    }
    await loadOptions().catch(() => null);          // phase titles; the report still shows without them
    renderReport(card, res.data.report || res.data, id);
  }
  load();
  return { dispose() { disposed = true; clearTimeout(timer); } };
}

// Evidence files (recordings, frames, exports) need the token, which an <audio>/<img> cannot send:
// they are fetched with it and shown from object URLs (kept for the page's life, one per file).
const mediaCache = new Map();
function authFetch(path) {
  const auth = getAuth();
  return fetch(path, { headers: auth && auth.token ? { Authorization: `Bearer ${auth.token}` } : {} });
}
function mediaUrl(path) {
  if (!mediaCache.has(path)) {
    mediaCache.set(path, authFetch(path).then(async (resp) => {
      if (!resp.ok) throw new ApiError(`无法加载（HTTP ${resp.status}）`, resp.status);
      return URL.createObjectURL(await resp.blob());
    }));
  }
  return mediaCache.get(path);
}

async function download(path, name) {
  const resp = await authFetch(path);
  if (!resp.ok) {
    let msg = `导出失败（HTTP ${resp.status}）`;
    try { msg = (await resp.json()).msg || msg; } catch {}
    flash(msg, 'error');
    return;
  }
  const url = URL.createObjectURL(await resp.blob());
  const a = h('a', { href: url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

const fmtSecs = (t) => (t == null ? '' : `${Math.floor(t / 60)}:${String(Math.floor(t % 60)).padStart(2, '0')}`);

// One answer's recordings, played in order from any of its transcript lines.
function answerEvidence(q) {
  const evidence = q.evidence || [];
  if (evidence.length === 0) return null;
  const cited = new Set(q.cites || []);
  const audio = h('audio', { class: 'answer-audio', controls: true, preload: 'none' });
  let current = -1;
  const lines = evidence.map((e, i) => h('li', {
    class: `evidence-line${cited.has(e.id) ? ' cited' : ''}${e.recording_url ? ' playable' : ''}`,
    dataset: { utterance: e.id }, title: e.recording_url ? '点击从这句开始播放' : '',
    onclick: () => { if (e.recording_url) playFrom(i); },
  }, h('span', { class: 'muted evidence-time' }, e.t_start != null ? `${fmtSecs(e.t_start)}–${fmtSecs(e.t_end)} ` : ''),
    e.text, cited.has(e.id) ? h('span', { class: 'badge' }, '评分依据') : null));
  async function playFrom(i) {
    while (i < evidence.length && !evidence[i].recording_url) i += 1;
    if (i >= evidence.length) return;
    current = i;
    lines.forEach((li, k) => li.classList.toggle('playing', k === i));
    try {
      audio.src = await mediaUrl(evidence[i].recording_url);
      await audio.play();
    } catch (e) { flash(`无法播放录音：${e.message}`, 'error'); }
  }
  audio.addEventListener('ended', () => playFrom(current + 1));
  const playable = evidence.some((e) => e.recording_url);
  return h('div', { class: 'answer-evidence' },
    playable ? h('div', { class: 'row' },
      h('button', { class: 'secondary play-answer', onclick: () => playFrom(0) }, '▶ 播放回答'), audio) : null,
    h('ol', { class: 'evidence-lines' }, lines));
}

function renderQaItems(items, id) {
  return items.length === 0 ? h('p', { class: 'muted' }, '没有回答记录。') :
    h('div', { id }, items.map((q, i) => h('div', { class: 'item-row report-question' },
      h('div', { class: 'row', style: 'justify-content: space-between' },
        h('strong', {}, `第 ${q.index ?? i + 1} 题：${q.question || q.prompt || ''}`), scoreBadge(q.score)),
      answerEvidence(q) ||
      h('p', {}, h('span', { class: 'muted' }, '我的回答：'), q.answer || '（未作答）'),
      q.good ? h('p', {}, h('span', { class: 'muted' }, '亮点：'), q.good) : null,
      q.missing ? h('p', {}, h('span', { class: 'muted' }, '不足：'), q.missing) : null,
      q.comment ? h('p', {}, h('span', { class: 'muted' }, '点评：'), q.comment) : null,
      q.reference_answer ? h('p', {}, h('span', { class: 'muted' }, '参考答案：'), q.reference_answer) : null)));
}

// A line diff (longest common subsequence) of two submissions: [[' ' | '+' | '-', line], ...].
function lineDiff(before, after) {
  const a = before.split('\n'), b = after.split('\n');
  const n = a.length, m = b.length;
  const lcs = Array.from({ length: n + 1 }, () => new Uint16Array(m + 1));
  for (let i = n - 1; i >= 0; i -= 1) {
    for (let j = m - 1; j >= 0; j -= 1) {
      lcs[i][j] = a[i] === b[j] ? lcs[i + 1][j + 1] + 1 : Math.max(lcs[i + 1][j], lcs[i][j + 1]);
    }
  }
  const out = [];
  let i = 0, j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && a[i] === b[j]) { out.push([' ', a[i]]); i += 1; j += 1; }
    else if (i < n && (j >= m || lcs[i + 1][j] >= lcs[i][j + 1])) { out.push(['-', a[i]]); i += 1; }
    else { out.push(['+', b[j]]); j += 1; }
  }
  return out;
}

function renderSubmissions(code, cites) {
  const subs = code.evidence || [];
  if (subs.length === 0) return null;
  const cited = new Set(cites || []);
  return h('ol', { class: 'code-submissions' }, subs.map((sub, k) => {
    const prev = k > 0 ? subs[k - 1] : null;
    const lines = prev ? lineDiff(prev.code || '', sub.code || '') : (sub.code || '').split('\n').map((l) => [' ', l]);
    const changed = lines.filter(([op]) => op !== ' ').length;
    return h('li', { class: 'code-submission', dataset: { submission: sub.id } },
      h('div', { class: 'row' },
        h('strong', {}, `第 ${sub.index} 次提交（${sub.language || ''}）`),
        h('span', { class: sub.total && sub.passed === sub.total ? 'badge ok' : 'badge warn' }, `通过 ${sub.passed} / ${sub.total}`),
        cited.has(sub.id) ? h('span', { class: 'badge' }, '评分依据') : null,
        prev ? h('span', { class: 'muted' }, `与上次相比改动 ${changed} 行`) : null),
      h('pre', { class: 'code-diff' }, lines.map(([op, text]) =>
        h('span', { class: op === '+' ? 'diff-add' : op === '-' ? 'diff-del' : 'diff-same' }, `${prev ? op : ' '} ${text}\n`))),
      sub.error ? h('p', { class: 'warn' }, sub.error) : null,
      h('ul', { class: 'case-results' }, (sub.cases || []).map((c) => h('li', { class: c.passed ? 'ok' : 'warn' },
        `用例 ${c.index}${c.visible ? '' : '（隐藏）'}：${c.passed ? '通过' : '未通过'}${c.error ? `（${c.error}）` : ''}`))));
  }));
}

function renderCodeSummary(code, id, cites) {
  return h('div', { id },
    code.problem_title ? h('p', {}, `题目：${code.problem_title}`) : null,
    code.attempted
      ? h('p', {}, `提交 ${code.submissions} 次，最后一次通过 ${code.final_passed ?? 0} / ${code.total ?? 0} 个用例`,
        code.score != null ? h('span', {}, '，得分 ', scoreBadge(code.score)) : null)
      : h('p', { class: 'muted' }, '未提交代码。'),
    code.comment ? h('p', {}, code.comment) : null,
    renderSubmissions(code, cites));
}

function cheatThumb(c) {
  if (!c.frame_url) return null;
  const img = h('img', { class: 'cheat-thumb', alt: c.kind_zh || c.kind || '异常画面' });
  mediaUrl(c.frame_url).then((url) => { img.src = url; }).catch(() => img.remove());
  return img;
}

// The report's sections come from the interview's phases (any phase, also one this page has never
// seen): "qa" sections list prompts and scored answers, "code" sections a code summary, others
// their items' prompt and answer. Reports written before sections existed use questions / code.
function renderSections(r) {
  const ids = new Set();
  const idFor = (type) => {
    const legacy = { qa: 'report-questions', code: 'report-code' }[type];
    if (legacy && !ids.has(legacy)) { ids.add(legacy); return legacy; }
    return undefined;
  };
  return r.sections.map((s) => {
    const items = s.items || [];
    const section = h('section', { class: 'report-section', dataset: { phase: s.phase || '', type: s.type || '' } });
    if (s.type === 'qa') {
      section.append(h('h2', {}, `${s.title || s.phase}（${items.length} 题）`), renderQaItems(items, idFor('qa')));
    } else if (s.type === 'code') {
      section.append(h('h2', {}, s.title || s.phase), renderCodeSummary(r.code || s.summary || {}, idFor('code'), r.code_cites));
    } else {
      section.append(h('h2', {}, s.title || s.phase), renderQaItems(items, undefined));
    }
    return section;
  });
}

function renderReport(card, r, id) {
  const questions = r.questions || [];
  const code = r.code || {};
  const cheats = r.cheat_events || [];
  const body = Array.isArray(r.sections) ? renderSections(r) : [
    h('h2', {}, `问答（${questions.length} 题）`), renderQaItems(questions, 'report-questions'),
    h('h2', {}, '代码题'), renderCodeSummary(code, 'report-code', r.code_cites)];
  fill(card, 
    h('div', { class: 'row', style: 'justify-content: space-between' },
      h('h1', {}, '面试报告'),
      h('div', { class: 'row' },
        h('button', { class: 'secondary', id: 'export-pdf', onclick: () => download(`/interviews/${encodeURIComponent(id)}/report.pdf`, `面试报告-${id}.pdf`) }, '导出 PDF'),
        h('button', { class: 'secondary', id: 'export-json', onclick: () => download(`/interviews/${encodeURIComponent(id)}/report.json`, `面试报告-${id}.json`) }, '导出 JSON'),
        h('button', { class: 'secondary', onclick: () => go('#/interviews') }, '返回面试记录'))),
    r.position_name ? h('p', { class: 'muted' }, `${r.position_name}${r.company_name ? ` · ${r.company_name}` : ''}`
      + `${r.generated_at ? ` · 生成于 ${fmtTime(r.generated_at)}` : ''}`) : null,
    r.degraded ? h('p', { class: 'muted', id: 'report-degraded' }, '当前报告由规则评分生成，更详细的 AI 点评生成后会自动替换。') : null,
    h('div', { class: 'row' },
      h('div', {}, h('div', { class: 'muted' }, '综合得分'),
        h('div', { class: 'score-big', id: 'overall-score' }, `${Math.round(Number(r.overall_score) * 10) / 10}`),
        h('div', { class: 'muted' }, '满分 10 分'))),
    h('h2', {}, '总体评价'),
    h('p', { id: 'report-summary' }, r.summary || ''),
    ...body,
    h('h2', {}, '作弊检测'),
    cheats.length === 0 ? h('p', { class: 'ok', id: 'report-cheats' }, '未发现异常。') :
      h('ul', { id: 'report-cheats' }, cheats.map((c) => h('li', { class: 'cheat-item' },
        `${c.kind_zh || c.kind || '异常'}${c.started_at ? `，${fmtTime(c.started_at)} 起` : ''}${c.seconds != null ? `，持续约 ${c.seconds} 秒` : ''}${c.phase ? `（${PHASE_LABELS[c.phase] || c.phase}）` : ''}`,
        cheatThumb(c)))),
  );
}

// ------------------------------------------------------------------------------------------------
// start
document.getElementById('logout').addEventListener('click', () => {
  setAuth(null);
  flash('已退出登录', 'info');
  go('#/login');
});
window.addEventListener('hashchange', () => { clearFlash(); route(); });
renderNav();
route();
