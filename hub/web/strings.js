// @ts-check
// The strings every screen shares (the header, the login, the stream's state, alarm kinds), both languages.

export const STRINGS = {
  zh: {
    login_title: '监控中心登录', username: '用户名', password: '密码', login: '登录', logout: '退出',
    lang_switch: 'English', connecting: '连接中…', live: '实时在线', disconnected: '连接断开',
    lost_title: '与中心的连接已断开', lost_body: '正在重新连接… 期间的报警将在恢复后补上。',
    bad_login: '用户名或密码错误', too_many: '失败次数过多，请稍后再试', failed: '操作失败', grid: '网格', node: '设备',
    line: '行', screens: '页面',
    k_alarm_pressed: '一键报警', k_alarm_repeat: '再次按下', k_door_forced: '门被强行打开', k_tamper_opened: '机箱被打开',
    k_tamper_camera: '摄像头被遮挡', k_node_offline: '设备离线', k_nodes_offline: '多台设备同时离线',
    k_detection_person: '检测到人员', k_detection_vehicle: '检测到车辆', k_detection_loitering: '徘徊',
    k_door_held_open: '门长时间未关', k_door_fire_release: '消防释放', k_door_lockout: '门禁锁定', k_node_fault: '设备故障',
    k_alarm_test: '测试报警', k_tamper_closed: '机箱已关闭', k_command_refused: '设备拒绝指令', k_config_applied: '配置已生效',
    k_config_rolled_back: '配置已回滚', k_config_trial: '配置试运行', k_door_granted: '开门', k_door_denied: '拒绝开门',
    k_access_enrol_progress: '指纹录入进度', k_selftest_result: '自检结果', k_selftest_probe: '自检链路探测',
  },
  en: {
    login_title: 'Monitoring centre login', username: 'Username', password: 'Password', login: 'Log in',
    logout: 'Log out', lang_switch: '中文', connecting: 'connecting…', live: 'live', disconnected: 'disconnected',
    lost_title: 'Connection to the hub lost', lost_body: 'Reconnecting… alarms raised meanwhile will be caught up.',
    bad_login: 'Wrong username or password', too_many: 'Too many failures; try again later', failed: 'Action failed',
    grid: 'Grid', node: 'Node', line: 'line', screens: 'Screens',
    k_alarm_pressed: 'Alarm button', k_alarm_repeat: 'Pressed again', k_door_forced: 'Door forced',
    k_tamper_opened: 'Enclosure opened', k_tamper_camera: 'Camera tampered', k_node_offline: 'Node offline',
    k_nodes_offline: 'Many nodes offline at once', k_detection_person: 'Person detected',
    k_detection_vehicle: 'Vehicle detected', k_detection_loitering: 'Loitering', k_door_held_open: 'Door held open',
    k_door_fire_release: 'Fire release', k_door_lockout: 'Door lockout', k_node_fault: 'Node fault',
    k_alarm_test: 'Test alarm', k_tamper_closed: 'Enclosure closed', k_command_refused: 'Command refused',
    k_config_applied: 'Config applied', k_config_rolled_back: 'Config rolled back', k_config_trial: 'Config on trial',
    k_door_granted: 'Door opened', k_door_denied: 'Door refused',
    k_access_enrol_progress: 'Finger enrolment progress', k_selftest_result: 'Self-test result',
    k_selftest_probe: 'Self-test uplink probe',
  },
};

