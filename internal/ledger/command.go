package ledger

import (
	"time"

	"github.com/keyledger/keyledger/domain"
)

// Command is the input of one use case: each use case takes one command
// value and has one entry point on Service.
type Command interface {
	// CommandName is the command's label in metrics and logs
	// ("create_key", ...): fixed, lower case, never derived from the Go
	// type's name.
	CommandName() string
}

// Command names, as Observe reports them. They are metric label values:
// never change one.
const (
	nameRegisterUser       = "register_user"
	nameLogin              = "login"
	nameCreateKey          = "create_key"
	nameRevokeKey          = "revoke_key"
	nameRegenerateSecret   = "regenerate_secret"
	nameAdminRevokeKey     = "admin_revoke_key"
	nameDisableUser        = "disable_user"
	nameEnableUser         = "enable_user"
	nameRevokeUserKeys     = "revoke_user_keys"
	nameCreateUser         = "create_user"
	nameEnrollAdminKey     = "enroll_admin_key"
	nameRevokeAdminKey     = "revoke_admin_key"
	nameBootstrapAdmin     = "bootstrap_admin"
	nameEraseUser          = "erase_user"
	nameEraseMe            = "erase_me"
	nameVerifyEmail        = "verify_email"
	nameResendVerification = "resend_verification"
	nameCreateInvitation   = "create_invitation"
	nameEditKey            = "edit_key"
	nameDisableKey         = "disable_key"
	nameEnableKey          = "enable_key"
	nameAdminEditKey       = "admin_edit_key"
	nameAdminDisableKey    = "admin_disable_key"
	nameAdminEnableKey     = "admin_enable_key"
	nameChangePassword     = "change_password"
	nameRevokeSessions     = "revoke_sessions"
	nameEndSession         = "end_session"
	nameAddCredits         = "add_credits"
	nameAdminAddCredits    = "admin_add_credits"
)

// CommandNames returns the CommandName of every command, for observers
// that want a series per command before the first one runs.
func CommandNames() []string {
	return []string{nameRegisterUser, nameLogin, nameCreateKey, nameRevokeKey, nameRegenerateSecret,
		nameAdminRevokeKey, nameDisableUser, nameEnableUser, nameRevokeUserKeys, nameCreateUser,
		nameEnrollAdminKey, nameRevokeAdminKey, nameBootstrapAdmin, nameEraseUser, nameEraseMe,
		nameVerifyEmail, nameResendVerification, nameCreateInvitation,
		nameEditKey, nameDisableKey, nameEnableKey, nameAdminEditKey, nameAdminDisableKey, nameAdminEnableKey,
		nameChangePassword, nameRevokeSessions, nameEndSession, nameAddCredits, nameAdminAddCredits,
		nameOIDCLogin, nameLinkIdentity, nameCreateTeam, nameInviteMember, nameJoinTeam, nameChangeMemberRole,
		nameRemoveMember, nameCreateServiceAccount, nameChangeServiceAccount, nameAdminTransferTeam, nameAdminSetTeamDisabled}
}

var (
	_ Command = RegisterUser{}
	_ Command = Login{}
	_ Command = CreateKey{}
	_ Command = RevokeKey{}
	_ Command = RegenerateSecret{}
	_ Command = AdminRevokeKey{}
	_ Command = DisableUser{}
	_ Command = EnableUser{}
	_ Command = RevokeUserKeys{}
	_ Command = CreateUser{}
	_ Command = EnrollAdminKey{}
	_ Command = RevokeAdminKey{}
	_ Command = BootstrapAdmin{}
	_ Command = EraseUser{}
	_ Command = EraseMe{}
	_ Command = SignUp{}
	_ Command = VerifyEmail{}
	_ Command = ResendVerification{}
	_ Command = CreateInvitation{}
	_ Command = EditKey{}
	_ Command = DisableKey{}
	_ Command = EnableKey{}
	_ Command = AdminEditKey{}
	_ Command = AdminDisableKey{}
	_ Command = AdminEnableKey{}
	_ Command = ChangePassword{}
	_ Command = RevokeSessions{}
	_ Command = EndSession{}
	_ Command = AddCredits{}
	_ Command = AdminAddCredits{}
	_ Command = CreateTeam{}
	_ Command = InviteMember{}
	_ Command = JoinTeam{}
	_ Command = ChangeMemberRole{}
	_ Command = RemoveMember{}
	_ Command = CreateServiceAccount{}
	_ Command = ChangeServiceAccount{}
	_ Command = AdminTransferTeam{}
	_ Command = AdminSetTeamDisabled{}
)

// observed reports a command's outcome (*err) and the time since start to
// the Observe hook, if any. Use cases call it deferred, once per run.
func (s *Service) observed(cmd Command, start time.Time, err *error) {
	if s.observe == nil {
		return
	}
	var kind domain.Kind
	if *err != nil {
		kind = domain.KindOf(*err)
	}
	s.observe(cmd.CommandName(), kind, time.Since(start))
}
