-- Headless Neovim 0.7 as a second, non-VS Code LSP client of `ebpf-portability lsp --stdio`.
-- Usage (nvim-lsp.sh does this): nvim --headless --clean -n -u nvim-lsp.lua COPY/process-tracer.bpf.c
-- Env: EBPF_LSP_NODE and EBPF_LSP_BIN, the node binary and bin/ebpf-portability.js to start.
-- It waits for the server's diagnostics, finds unsafe-kernel-deref on the real_parent line, asks
-- for code actions there, applies the first one's edit, checks the buffer text and that the
-- diagnostic goes while the other unsafe read stays, then turns the rule off and on by settings. Prints PASS/FAIL lines and exits non-zero on
-- any failure. Only Neovim 0.7 APIs are used (vim.lsp.start appeared in 0.8), all still present later.
local RULE = 'unsafe-kernel-deref'
local SOURCE = 'ebpf-portability'
local PPID_LINE = 'e->ppid = task->real_parent->tgid;'
local PID_LINE = 'e->pid = task->tgid;'
local FIX_TITLE = 'Read with BPF_CORE_READ(task, real_parent, tgid)'
local FIXED_LINE = 'e->ppid = BPF_CORE_READ(task, real_parent, tgid);'

local passed, failed = 0, 0
local function out(s) io.stdout:write(s .. '\n') end
local function check(name, ok, detail)
  if ok then passed = passed + 1 else failed = failed + 1 end
  out((ok and 'PASS ' or 'FAIL ') .. name .. (detail and (': ' .. detail) or ''))
  return ok
end
local function finish()
  out(string.format('nvim: %d passed, %d failed', passed, failed))
  vim.cmd((failed == 0 and passed > 0) and 'qall!' or 'cquit! 1')
end

local t0 = vim.loop.hrtime()
local function ms() return string.format('%.0f ms after nvim started', (vim.loop.hrtime() - t0) / 1e6) end
local last = nil -- the latest publishDiagnostics params for the buffer
local publishes = 0
local server_exited = false
local client_id

local function on_diagnostics(err, result, ctx, config)
  publishes = publishes + 1
  last = result
  -- Neovim's own handling (signs, virtual text) runs too, as in a user's editor.
  pcall(vim.lsp.diagnostic.on_publish_diagnostics, err, result, ctx, config)
end

local function trim(s) return (s:gsub('^%s+', ''):gsub('%s+$', '')) end

-- The 0-based line whose trimmed text is `text`, or nil.
local function line_of(bufnr, text)
  for i, l in ipairs(vim.api.nvim_buf_get_lines(bufnr, 0, -1, false)) do
    if trim(l) == text then return i - 1 end
  end
  return nil
end

-- This rule's diagnostics from this server on a 0-based line, in the latest publish.
local function rule_diagnostics(line)
  local found = {}
  for _, d in ipairs(last and last.diagnostics or {}) do
    if d.code == RULE and d.source == SOURCE and d.range.start.line == line then table.insert(found, d) end
  end
  return found
end

local function describe()
  local parts = {}
  for _, d in ipairs(last and last.diagnostics or {}) do
    table.insert(parts, string.format('%d: [%s %s] %s', d.range.start.line + 1, tostring(d.source), tostring(d.code), d.message))
  end
  return #parts > 0 and table.concat(parts, '; ') or 'no diagnostics'
end

vim.api.nvim_create_autocmd('FileType', { pattern = 'c', callback = function(args)
  local root = vim.fn.fnamemodify(vim.api.nvim_buf_get_name(args.buf), ':p:h')
  client_id = vim.lsp.start_client({
    name = 'ebpf-portability',
    cmd = { os.getenv('EBPF_LSP_NODE') or 'node', os.getenv('EBPF_LSP_BIN'), 'lsp', '--stdio' },
    root_dir = root,
    workspace_folders = { { uri = vim.uri_from_fname(root), name = 'workspace' } },
    handlers = { ['textDocument/publishDiagnostics'] = on_diagnostics },
    on_exit = function(code) server_exited = true; out('server exited with code ' .. code) end,
  })
  vim.lsp.buf_attach_client(args.buf, client_id)
end })

vim.api.nvim_create_autocmd('VimEnter', { callback = function() vim.schedule(function()
  local bufnr = vim.api.nvim_get_current_buf()
  if not check('the .bpf.c buffer has filetype c', vim.bo[bufnr].filetype == 'c', vim.bo[bufnr].filetype) then return finish() end
  if not check('the language server was started', client_id ~= nil) then return finish() end
  local ppid = line_of(bufnr, PPID_LINE)
  local pid = line_of(bufnr, PID_LINE)
  if not check('the example has the two unsafe reads', ppid ~= nil and pid ~= nil) then return finish() end

  -- 1. The diagnostic arrives. (On 0.7 client_is_stopped() is true until the handshake ends, so
  --    server death is seen through on_exit instead.)
  local got = vim.wait(30000, function() return #rule_diagnostics(ppid) > 0 or server_exited end, 20)
  local diags = rule_diagnostics(ppid)
  if not check(RULE .. ' on line ' .. (ppid + 1), got and #diags > 0, ms() .. '; ' .. describe()) then return finish() end
  local d = diags[1]
  check('the diagnostic names its source', d.source == SOURCE, tostring(d.source))

  -- 2. Code actions at the diagnostic; the first one's edit is applied to the buffer.
  local client = vim.lsp.get_client_by_id(client_id)
  local resp = client.request_sync('textDocument/codeAction', {
    textDocument = { uri = vim.uri_from_bufnr(bufnr) },
    range = d.range,
    context = { diagnostics = { d }, only = { 'quickfix' } },
  }, 10000, bufnr)
  local actions = (resp and resp.result) or {}
  local titles = {}
  for _, a in ipairs(actions) do table.insert(titles, a.title) end
  local first = actions[1]
  local offered = #titles > 0 and table.concat(titles, ' | ') or vim.inspect(resp and resp.err)
  if not check('a code action is offered', first ~= nil, offered) then return finish() end
  check('the first code action is "' .. FIX_TITLE .. '"', first.title == FIX_TITLE, first.title)
  if not check('the code action carries an edit', first.edit ~= nil) then return finish() end
  local before = publishes
  vim.lsp.util.apply_workspace_edit(first.edit, client.offset_encoding or 'utf-16')
  local text = vim.api.nvim_buf_get_lines(bufnr, ppid, ppid + 1, false)[1] or ''
  check('the buffer line now reads "' .. FIXED_LINE .. '"', trim(text) == FIXED_LINE, text)

  -- 3. The server re-analyses the edited buffer: the fixed read is gone, the other one stays.
  vim.wait(10000, function() return publishes > before and #rule_diagnostics(ppid) == 0 end, 20)
  check('the diagnostic is gone after the fix', publishes > before and #rule_diagnostics(ppid) == 0, describe())
  check('"' .. PID_LINE .. '" is still reported', #rule_diagnostics(pid) > 0, describe())

  -- 4. Settings the way Neovim users send them (0.7 does not offer workspace/configuration, so
  --    the README's config sends them with workspace/didChangeConfiguration): the rule turned off
  --    clears its diagnostics, and empty settings bring them back.
  local function rule_count()
    local n = 0
    for _, x in ipairs(last and last.diagnostics or {}) do if x.code == RULE then n = n + 1 end end
    return n
  end
  before = publishes
  client.notify('workspace/didChangeConfiguration', { settings = { ebpfPortability = { rules = { [RULE] = 'off' } } } })
  vim.wait(10000, function() return publishes > before and rule_count() == 0 end, 20)
  check('rules {"' .. RULE .. '": "off"} clears its diagnostics', publishes > before and rule_count() == 0, describe())
  before = publishes
  client.notify('workspace/didChangeConfiguration', { settings = vim.empty_dict() })
  vim.wait(10000, function() return publishes > before and #rule_diagnostics(pid) > 0 end, 20)
  check('empty settings bring them back', #rule_diagnostics(pid) > 0, describe())

  vim.lsp.stop_client(client_id)
  finish()
end) end })
